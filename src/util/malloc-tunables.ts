/**
 * The malloc settings tallyd starts with (docs/deploy.md, "Memory: huge pages"). A node's state
 * lives in large typed arrays (counter rows, key arenas, hash indexes) that glibc's malloc
 * allocates, and a restart writes all of it into memory the process has never touched. Each first
 * touch of a 4 KiB page is a page fault; on a VM where a fault is dear (about 10 us on the box of
 * docs/benchmarks.md, "7 December 2026 (third session)") those faults were half of a restart at
 * 10 M counters. With transparent huge pages one fault maps 2 MiB.
 *
 * glibc reads its tunables from GLIBC_TUNABLES once, when the process starts, so these go into
 * the environment of whatever starts tallyd (scripts/start.ts, the test clusters, the container
 * images), not into tallyd itself:
 *   - glibc.malloc.hugetlb=1: malloc advises transparent huge pages (madvise) for the memory it
 *     maps, its heap included (glibc 2.35 or later; older ones and other C libraries ignore the
 *     variable). It acts only where the kernel's THP mode is `madvise` or `always`.
 *   - glibc.malloc.mmap_threshold=262144: every allocation of 256 KiB or more is a mapping of its
 *     own, returned to the system when freed. On huge pages a heap is resident in whole 2 MiB
 *     pages, so it holds only small blocks; by default the threshold rises with the largest block
 *     freed (up to 32 MiB) and the heap keeps freed blocks below it: 11 bytes per counter more at
 *     10 M counters. Buffers we allocate often stay below it (checkpoint-format.ts: zlib's chunks).
 *   - glibc.malloc.arena_max=1: one heap for every thread; each extra heap holds whole 2 MiB pages.
 * The measurements behind each choice are in docs/benchmarks.md.
 */
export const TALLYD_MALLOC_TUNABLES = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=262144:glibc.malloc.arena_max=1";

/**
 * `env` with TALLYD_MALLOC_TUNABLES added to GLIBC_TUNABLES. A tunable the caller already set
 * wins (an operator's own GLIBC_TUNABLES is kept, ours only fill the gaps); TALLY_HUGE_PAGES=0
 * leaves the environment as it is.
 */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.TALLY_HUGE_PAGES === "0") return env;
  const current = (env.GLIBC_TUNABLES ?? "").split(":").filter((tunable) => tunable !== "");
  const named = new Set(current.map((tunable) => tunable.split("=")[0]));
  const added = TALLYD_MALLOC_TUNABLES.split(":").filter((tunable) => !named.has(tunable.split("=")[0]));
  if (added.length === 0) return env;
  return { ...env, GLIBC_TUNABLES: [...current, ...added].join(":") };
}
