import { defineConfig } from "vitest/config";

// The compose rehearsal (test/deploy/*.docker.ts): needs the Docker daemon of scripts/docker-up.sh
// and docker-compose, so it is kept out of `npm test`; .ci/run runs it after the container chaos run.
export default defineConfig({
  test: {
    include: ["test/deploy/**/*.docker.ts"],
    testTimeout: 300_000,
    hookTimeout: 900_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
  },
});
