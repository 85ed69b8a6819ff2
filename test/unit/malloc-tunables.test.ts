import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TALLYD_MALLOC_TUNABLES, withMallocTunables } from "../../src/util/malloc-tunables.js";

describe("withMallocTunables", () => {
  it("adds tallyd's malloc tunables to an environment without any", () => {
    const env = withMallocTunables({ PATH: "/usr/bin" });
    expect(env.GLIBC_TUNABLES).toBe(TALLYD_MALLOC_TUNABLES);
    expect(env.PATH).toBe("/usr/bin");
  });

  it("keeps the operator's tunables and never overrides one they set", () => {
    const env = withMallocTunables({ GLIBC_TUNABLES: "glibc.malloc.arena_max=4:glibc.pthread.rseq=0" });
    expect(env.GLIBC_TUNABLES).toBe(
      "glibc.malloc.arena_max=4:glibc.pthread.rseq=0:glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=262144",
    );
    const all = "glibc.malloc.hugetlb=0:glibc.malloc.mmap_threshold=1:glibc.malloc.arena_max=8";
    expect(withMallocTunables({ GLIBC_TUNABLES: all }).GLIBC_TUNABLES).toBe(all);
  });

  it("leaves the environment alone with TALLY_HUGE_PAGES=0", () => {
    const env = { TALLY_HUGE_PAGES: "0" };
    expect(withMallocTunables(env)).toBe(env);
  });

  it("is what the container images set", () => {
    expect(readFileSync("deploy/Dockerfile", "utf8")).toContain(`GLIBC_TUNABLES=${TALLYD_MALLOC_TUNABLES} \\`);
    expect(readFileSync("scripts/docker-image.sh", "utf8")).toContain(`--change 'ENV GLIBC_TUNABLES=${TALLYD_MALLOC_TUNABLES}'`);
  });

  // The tunables take effect: a large typed array, written once, sits on huge pages. Only where
  // glibc knows the tunable (2.35+) and the kernel's THP mode lets malloc ask for them.
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const [major = 0, minor = 0] = (glibc ?? "0.0").split(".").map(Number);
  let thpMode = "never";
  try {
    thpMode = /\[(\w+)\]/.exec(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))?.[1] ?? "never";
  } catch {
    // no THP here
  }
  const canTell = major > 2 || (major === 2 && minor >= 35);
  it.skipIf(!canTell || thpMode === "never")("puts a node's large buffers on transparent huge pages", () => {
    const script = [
      "const b = new Uint8Array(64 << 20); b.fill(1);",
      "const line = require('fs').readFileSync('/proc/self/smaps_rollup', 'utf8').split('\\n').find((l) => l.startsWith('AnonHugePages'));",
      "console.log(Number(line.split(/\\s+/)[1]));",
    ].join(" ");
    const run = (env: NodeJS.ProcessEnv) => Number(spawnSync(process.execPath, ["-e", script], { env, encoding: "utf8" }).stdout.trim());
    const plain = { ...process.env, GLIBC_TUNABLES: "", TALLY_HUGE_PAGES: "0" };
    expect(run(withMallocTunables({ ...process.env, GLIBC_TUNABLES: "" }))).toBeGreaterThanOrEqual(32 * 1024); // kB
    if (thpMode === "madvise") expect(run(plain)).toBe(0);
  });
});
