/** Runs one tallyctl command line in-process; output is stdout and stderr together. */
import { runCli } from "../../src/cli/cli.js";
import { TallyClient } from "../../src/client/index.js";

/** tallyctl with exactly these arguments (give --endpoints or --config yourself). */
export async function runTallyctl(args: string[]): Promise<{ code: number; output: string }> {
  const out: string[] = [];
  const code = await runCli(args, {
    stdout: (text) => out.push(text),
    stderr: (text) => out.push(text),
    cwd: process.cwd(),
    env: {},
    createClient: (options) => new TallyClient(options),
  });
  return { code, output: out.join("") };
}

/** tallyctl against `endpoints`, with an 8 s timeout. */
export async function tallyctl(endpoints: string[], ...args: string[]): Promise<{ code: number; output: string }> {
  return runTallyctl(["--endpoints", endpoints.join(","), "--timeout", "8000", ...args]);
}
