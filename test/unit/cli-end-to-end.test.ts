import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { runCli, type CliIo } from "../../src/cli/cli.js";
import { TallyClient } from "../../src/client/index.js";
import { FakeCluster, keyInShard } from "./client-fake-cluster.js";
import { runNodeProcess, type ProcessResult } from "../support/run-process.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const binPath = fileURLToPath(new URL("../../bin/tallyctl.js", import.meta.url));

let cluster: FakeCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    cwd: repoRoot,
    env: {},
    createClient: (options) => new TallyClient(options),
  };
  return { code: await runCli(argv, io), stdout, stderr };
}

function runBin(args: string[], deadlineMs: number): Promise<ProcessResult> {
  return runNodeProcess([binPath, ...args], { cwd: repoRoot, env: { ...process.env, TALLY_ENDPOINTS: "" }, deadlineMs });
}

describe("tallyctl against the fake cluster", () => {
  it("add, get, set, cas, reset, status and routes", async () => {
    cluster = await FakeCluster.start();
    const endpoints = ["--endpoints", cluster.addresses[1]!];
    const key = keyInShard(cluster.shard(2), "cli");
    expect(await run([...endpoints, "add", key, "40"])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(new RegExp(`^${key} = 40 `)),
    });
    expect((await run([...endpoints, "add", key, "-50"])).stdout).toMatch(new RegExp(`^${key} = -10 `));
    const read = await run([...endpoints, "--json", "get", key]);
    const parsed = JSON.parse(read.stdout) as { value: string; version: string };
    expect(parsed.value).toBe("-10");
    expect((await run([...endpoints, "cas", key, parsed.version, "9223372036854775807"])).stdout).toMatch(/= 9223372036854775807 /);
    const overflow = await run([...endpoints, "add", key, "1"]);
    expect(overflow.code).toBe(1);
    expect(overflow.stderr).toContain("OUT_OF_RANGE");
    expect((await run([...endpoints, "reset", key])).code).toBe(0);
    expect((await run([...endpoints, "get", key, "--stale"])).stdout).toContain("does not exist");
    const status = await run([...endpoints, "status"]);
    expect(status.code, status.stdout).toBe(0);
    expect(status.stdout.split("\n")[0]).toBe(
      `healthy: ${cluster.addresses.length}/${cluster.addresses.length} nodes, 2/2 shards with a leader`,
    );
    const verbose = await run([...endpoints, "status", "--verbose"]);
    expect(verbose.stdout.split("\n").filter((line) => /\bleader\b/.test(line) && !line.startsWith("healthy"))).toHaveLength(2);
    const routes = await run([...endpoints, "routes"]);
    expect(routes.stdout).toContain("8192-16383");
  });

  it("exit 3 when nothing listens", async () => {
    const result = await run(["--endpoints", "127.0.0.1:1", "--timeout", "2000", "get", "k"]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain("is the cluster running? try `npm start`");
    expect((await run(["--endpoints", "127.0.0.1:1", "status"])).code).toBe(3);
  });
});

describe("bin/tallyctl.js", () => {
  it("runs through tsx, exits by itself with the command's code", async () => {
    cluster = await FakeCluster.start();
    const help = await runBin(["--help"], 30_000);
    expect(help).toMatchObject({ code: 0, killed: false });
    expect(help.stdout).toContain("Usage: tallyctl");
    // The bundle in dist/ finds package.json too.
    const version = await runBin(["--version"], 30_000);
    expect(version).toMatchObject({ code: 0, killed: false, stdout: expect.stringMatching(/^tallyctl \d+\.\d+\.\d+ \(node v\d+/) });
    const added = await runBin(["--endpoints", cluster.addresses[0]!, "add", "bin-key", "3"], 30_000);
    expect(added.killed, added.stderr).toBe(false);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^bin-key = 3 /);
    const unreachable = await runBin(["--endpoints", "127.0.0.1:1", "get", "k"], 30_000);
    expect(unreachable).toMatchObject({ code: 3, killed: false });
  });
});
