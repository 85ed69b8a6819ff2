/**
 * A short seeded fuzz run (about 25 s) against a real 3-node cluster; `npm run fuzz` runs the long
 * one. FUZZ_SEED replays a run; a failure prints the seed and the case.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "../support/cluster.js";
import { Fuzzer } from "./harness.js";

const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const durationMs = Number(process.env.FUZZ_SHORT_MS ?? 25_000);

describe("fuzzing the client and peer ports", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start({ nodes: 3, shards: 2 });
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it(`survives bad input without a crash, an unhandled error or a state change (FUZZ_SEED=${seed})`, async () => {
    const report = await new Fuzzer(cluster, {
      seed,
      iterations: Number(process.env.FUZZ_ITERATIONS ?? 1_000_000),
      durationMs,
      checkEvery: 200,
    }).run();
    expect(report.findings, `FUZZ_SEED=${seed}\n${report.findings.join("\n")}`).toEqual([]);
    // The run must have done real work on every path, or it proves nothing.
    expect(report.cases).toBeGreaterThan(100);
    expect(report.validMutationsApplied).toBeGreaterThan(10);
    expect(report.stateChecks).toBeGreaterThan(0);
    for (const kind of ["garbage", "mutated", "pipeline", "edge", "valid", "peer"])
      expect(report.casesByKind[kind] ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
