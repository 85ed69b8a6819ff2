/** Runs one tallyctl command line in-process against `endpoints`; output is stdout and stderr together. */
import { runCli } from "../../src/cli/cli.js";
import { TallyClient } from "../../src/client/index.js";

export async function tallyctl(endpoints: string[], ...args: string[]): Promise<{ code: number; output: string }> {
  const out: string[] = [];
  const code = await runCli(["--endpoints", endpoints.join(","), "--timeout", "8000", ...args], {
    stdout: (text) => out.push(text),
    stderr: (text) => out.push(text),
    cwd: process.cwd(),
    env: {},
    createClient: (options) => new TallyClient(options),
  });
  return { code, output: out.join("") };
}
