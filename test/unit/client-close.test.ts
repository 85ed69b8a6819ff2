import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { FakeCluster } from "./client-fake-cluster.js";
import { runNodeProcess, type ProcessResult } from "../support/run-process.js";

const childPath = fileURLToPath(new URL("./client-exit-child.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

let cluster: FakeCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** Runs the child; resolves with its exit code and output, or kills it at the deadline. */
function runChild(args: string[], deadlineMs: number): Promise<ProcessResult> {
  return runNodeProcess(["--import", "tsx", childPath, ...args], {
    cwd: repoRoot,
    env: { ...process.env, TALLY_LOG_LEVEL: "silent" },
    deadlineMs,
  });
}

describe("TallyClient.close()", () => {
  it("leaves no handle behind: the process exits by itself", async () => {
    cluster = await FakeCluster.start();
    const result = await runChild([cluster.addresses[0]!], 30_000);
    expect(result.killed, result.stderr).toBe(false);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout.trim())).toEqual({ value: "1", inflight: null });
    expect(cluster.keepAlives.length).toBeGreaterThan(0);
  });

  it("also with a mutation in flight, which is reported ambiguous", async () => {
    cluster = await FakeCluster.start();
    cluster.pipelineHook = (_node, request) =>
      request.op === "add" && request.add?.key.toString() === "exit-held" ? { kind: "no-reply" } : undefined;
    const result = await runChild([cluster.addresses[0]!, "inflight"], 30_000);
    expect(result.killed, result.stderr).toBe(false);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout.trim())).toEqual({ value: "1", inflight: "AmbiguousOperationError" });
  });
});
