import { defineConfig } from "vitest/config";

// Two groups, run one after the other: the CPU-bound suites (unit, scripted Raft, simulator) in
// parallel, then the real-process integration tests one file at a time, so simulator seeds never
// starve a 3-node cluster of CPU on a 2-core machine and make its timing flaky. Before either, the
// globalSetup rebuilds the tallyd/tallyctl bundles that are older than src/ (the bins never build).
export default defineConfig({
  test: {
    globalSetup: ["test/support/build-bundles.ts"],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: "forks",
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: "core",
          include: ["test/unit/**/*.test.ts", "test/raft/**/*.test.ts", "test/sim/**/*.test.ts"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/chaos/**/*.test.ts", "test/fuzz/**/*.test.ts"],
          sequence: { groupOrder: 1 },
          maxWorkers: 1,
          fileParallelism: false,
        },
      },
    ],
  },
});
