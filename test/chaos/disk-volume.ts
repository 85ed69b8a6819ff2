/**
 * The disk nemesis's volumes: each node's data directory lives on its own small tmpfs (mounted by
 * the harness, which runs as root), so "the disk is full" is a real ENOSPC from the kernel, not a
 * simulated error: fill() writes a ballast file until the filesystem has no room left, and the
 * node's next LevelDB write fails. tally must then stop that node (fail-stop, exit 1) rather than
 * go on acknowledging what it cannot persist, and after drain() and a restart it must open the
 * same data intact. The volumes persist across node restarts and are unmounted in teardown.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Room for a long run's log, snapshots and compactions; memory is only used as it fills. */
const VOLUME_BYTES = 768 * 1024 * 1024;
const BALLAST = "ballast.fill";

export class DiskVolumes {
  private readonly mounted = new Set<string>();

  constructor(private readonly root: string) {}

  /** Mounts node `id`'s volume and returns its data directory inside it (relative to root). */
  mount(id: number): string {
    const dir = this.volume(id);
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${VOLUME_BYTES}`, "tmpfs", dir], { stdio: "pipe" });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(`the disk nemesis mounts a tmpfs per node and needs root: mount failed: ${stderr || (error as Error).message}`);
    }
    this.mounted.add(dir);
    mkdirSync(join(dir, `n${id}`));
    return join(`vol${id}`, `n${id}`);
  }

  /** Fills node `id`'s volume: every later write on it fails with ENOSPC. Returns the bytes written. */
  fill(id: number): number {
    const fd = openSync(join(this.volume(id), BALLAST), "a");
    let written = 0;
    try {
      for (const size of [16 << 20, 1 << 20, 64 << 10, 4 << 10, 512, 1]) {
        const chunk = Buffer.alloc(size);
        for (;;) {
          try {
            written += writeSync(fd, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
            throw error;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
    return written;
  }

  /** Frees the room fill() took. */
  drain(id: number): void {
    rmSync(join(this.volume(id), BALLAST), { force: true });
  }

  /** Lazy unmount of every volume (a process still holding files cannot keep it busy). Never throws. */
  unmountAll(): void {
    for (const dir of this.mounted) {
      try {
        execFileSync("umount", ["-l", dir], { stdio: "pipe" });
      } catch {
        // already gone
      }
    }
    this.mounted.clear();
  }

  private volume(id: number): string {
    return join(this.root, `vol${id}`);
  }
}
