/**
 * Checkpoint files (the CheckpointStore port, server/core/ports.ts): one file per (group, index)
 * under <dataDir>/checkpoints/g<group>/<index>.ckpt, beside the LevelDB log store.
 *
 * A write goes to a temporary name in the same directory (`.<index>.<n>.tmp`), is fsynced, renamed
 * to its final name, and the directory is fsynced: after a crash the final name holds the whole
 * file or does not exist. Temporary files left by a crash are removed by list(). The store does not
 * look inside a file: the checkpoint format carries its own checksums, and the log store's
 * snapshot record says which checkpoint a restart may start from (docs/architecture.md,
 * "Checkpoints").
 */
import { mkdir, open, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError, UnavailableError } from "../util/errors.js";

const SUFFIX = ".ckpt";
const TEMP_SUFFIX = ".tmp";

export class FileCheckpointStore {
  private temporaries = 0;

  constructor(readonly dir: string) {}

  private groupDir(groupId: number): string {
    return join(this.dir, `g${groupId}`);
  }

  private path(groupId: number, index: number): string {
    return join(this.groupDir(groupId), `${index}${SUFFIX}`);
  }

  async write(groupId: number, index: number, blocks: readonly Uint8Array[]): Promise<void> {
    const dir = this.groupDir(groupId);
    await mkdir(dir, { recursive: true });
    const temporary = join(dir, `.${index}.${process.pid}.${this.temporaries++}${TEMP_SUFFIX}`);
    const file = await open(temporary, "w");
    try {
      let position = 0;
      for (const block of blocks) {
        let written = 0;
        while (written < block.length) {
          const { bytesWritten } = await file.write(block, written, block.length - written, position);
          written += bytesWritten;
          position += bytesWritten;
        }
      }
      await file.sync();
    } catch (error) {
      await file.close().catch(() => undefined);
      await unlink(temporary).catch(() => undefined);
      throw new UnavailableError(`cannot write checkpoint ${index} of group ${groupId}: ${(error as Error).message}`, { cause: error });
    }
    await file.close();
    await rename(temporary, this.path(groupId, index));
    await syncDirectory(dir);
  }

  async read(groupId: number, index: number): Promise<Uint8Array> {
    const size = await this.size(groupId, index);
    return this.readChunk(groupId, index, 0, size);
  }

  async readChunk(groupId: number, index: number, offset: number, length: number): Promise<Uint8Array> {
    let file;
    try {
      file = await open(this.path(groupId, index), "r");
    } catch (error) {
      throw new CorruptionError(`checkpoint ${index} of group ${groupId} cannot be opened: ${(error as Error).message}`);
    }
    try {
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await file.read(out, filled, length - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === length ? out : out.subarray(0, filled);
    } finally {
      await file.close();
    }
  }

  async size(groupId: number, index: number): Promise<number> {
    try {
      return (await stat(this.path(groupId, index))).size;
    } catch (error) {
      throw new CorruptionError(`checkpoint ${index} of group ${groupId} is missing: ${(error as Error).message}`);
    }
  }

  /** The group's completed checkpoints, ascending; removes temporary files a crash left behind. */
  async list(groupId: number): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.groupDir(groupId));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    const indexes: number[] = [];
    for (const name of names) {
      if (name.endsWith(TEMP_SUFFIX)) {
        await unlink(join(this.groupDir(groupId), name)).catch(() => undefined);
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue;
      const index = Number(name.slice(0, -SUFFIX.length));
      if (Number.isSafeInteger(index) && index >= 0) indexes.push(index);
    }
    return indexes.sort((a, b) => a - b);
  }

  async remove(groupId: number, index: number): Promise<void> {
    await rm(this.path(groupId, index), { force: true });
  }

  async removeGroup(groupId: number): Promise<void> {
    await rm(this.groupDir(groupId), { recursive: true, force: true });
  }

  /** The groups that have a checkpoint directory. */
  async groups(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    return names
      .filter((name) => /^g\d+$/.test(name))
      .map((name) => Number(name.slice(1)))
      .sort((a, b) => a - b);
  }
}

/** fsync of a directory, so a rename in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
