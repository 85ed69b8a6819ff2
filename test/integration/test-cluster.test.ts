/**
 * The harness itself: a node that exits without being asked is recorded with its exit code or
 * signal and the tail of its output (what bench/placement.ts lacked when a move ended "target
 * node 4 died" and nothing said whether a process had exited); stops and kills the harness asked
 * for are not.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeExit, eventually, keepTail, OUTPUT_TAIL_BYTES, TestCluster, type NodeExit } from "../support/cluster.js";

describe("keepTail", () => {
  it("keeps the newest text, at most maxBytes of it, across chunk boundaries", () => {
    const chunks: string[] = [];
    keepTail(chunks, "abcdef", 8);
    keepTail(chunks, "ghij", 8);
    expect(chunks.join("")).toBe("cdefghij");
    keepTail(chunks, "0123456789", 8);
    expect(chunks.join("")).toBe("23456789");
    keepTail(chunks, "x", 8);
    expect(chunks.join("")).toBe("3456789x");
  });
});

describe("TestCluster node exits", () => {
  let cluster: TestCluster;
  const reported: NodeExit[] = [];

  beforeAll(async () => {
    cluster = await TestCluster.start({ nodes: 1, shards: 1, onUnexpectedExit: (exit) => reported.push(exit) });
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  it("records an exit it did not ask for, with the signal and the node's last output, and reports it", async () => {
    const child = cluster.processes.get(1)!;
    process.kill(child.pid!, "SIGKILL"); // from outside the harness, by the PID this test started
    const exit = await eventually(() => cluster.exits.get(1), 10_000, "the exit to be recorded");
    expect(exit.expected).toBe(false);
    expect(exit.signal).toBe("SIGKILL");
    expect(exit.code).toBeNull();
    expect(exit.pid).toBe(child.pid);
    expect(exit.outputTail).toContain("tallyd node 1 serving clients");
    expect(exit.outputTail.length).toBeLessThanOrEqual(OUTPUT_TAIL_BYTES);
    expect(reported).toEqual([exit]);
    expect(cluster.unexpectedExits).toEqual([exit]);
    // Start-up warnings (an open peer port without auth) may come before the serving line.
    expect(describeExit(exit)).toMatch(
      /^tallyd node 1 \(pid \d+\) exited unexpectedly: signal SIGKILL after [\d.]+ s; last output:\n(.*\n)*tallyd node 1 serving/,
    );
    expect(() => cluster.assertNoUnexpectedExit()).toThrow(/exited unexpectedly: signal SIGKILL/);
  }, 30_000);

  it("a stop the harness asked for is recorded as expected and not reported", async () => {
    cluster.startNode(1);
    await cluster.waitReady();
    expect(await cluster.stop(1)).toBe(0);
    const exit = await eventually(
      () => (cluster.exits.get(1)?.expected ? cluster.exits.get(1) : undefined),
      10_000,
      "the stop to be recorded",
    );
    expect(exit.code).toBe(0);
    expect(reported).toHaveLength(1);
    expect(cluster.unexpectedExits).toHaveLength(1);
  }, 60_000);
});
