import { defineConfig } from "vitest/config";

// The chaos harness's container backend (`npm run chaos:container`): needs the Docker daemon of
// scripts/docker-up.sh, so it is kept out of `npm test`, whose config only includes *.test.ts.
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.docker.ts"],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
  },
});
