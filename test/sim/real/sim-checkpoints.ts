/**
 * A simulated checkpoint directory for one simulated node: the CheckpointStore port
 * (src/server/core/ports.ts) over memory, with the crash behaviour of the file-system dance the
 * real store does (write a temporary file, fsync it, rename it, fsync the directory).
 *
 * A write() takes a seeded latency and resolves once the checkpoint is durable under its final
 * name. A crash before that leaves, at random, nothing, or a torn temporary file (a prefix of the
 * bytes, or the bytes with some flipped): never a file under the final name, so list() and read()
 * never see it (leftovers() shows the debris). A remove() is durable when it resolves; a crash
 * before that may leave the file. The directory outlives the node: after a crash the restarted
 * node opens a new store over it, and the old incarnation's calls hang.
 *
 * PLANTED DEFECT `tearFinalNames` (for testing the readers' checksums, never a store that keeps the
 * port's promise): a crash during a write may leave the torn file under its FINAL name, as a store
 * that renamed before its fsync would.
 */
import type { CheckpointStore } from "../../../src/server/core/ports.js";
import type { LogIndex } from "../../../src/raft/types.js";
import { assert } from "../../../src/util/assert.js";
import type { Prng } from "../../../src/util/prng.js";
import type { Scheduler } from "./sim-kv.js";

export interface SimCheckpointOptions {
  /** Latency of a whole write (temporary file, fsync, rename, directory fsync), virtual ms. */
  writeMsMin: number;
  writeMsMax: number;
  /** Latency of a remove. */
  removeMsMax: number;
  /** PLANTED DEFECT: a crash mid-write may leave a torn file under the final name. */
  tearFinalNames?: boolean;
}

export const defaultCheckpointOptions: SimCheckpointOptions = { writeMsMin: 1, writeMsMax: 20, removeMsMax: 2 };

export interface Leftover {
  groupId: number;
  index: LogIndex;
  /** "torn-prefix": the first bytes only; "flipped": full length, some bytes changed. */
  damage: "torn-prefix" | "flipped";
  data: Uint8Array;
}

interface PendingFileOp {
  kind: "write" | "remove";
  groupId: number;
  index: LogIndex;
  data?: Uint8Array;
}

const fileName = (groupId: number, index: LogIndex): string => `g${groupId}/${index}.ckpt`;

export class SimCheckpointDisk {
  /** Durable files under their final names. */
  private readonly files = new Map<string, { groupId: number; index: LogIndex; data: Uint8Array }>();
  /** Temporary files a crash left behind (never read by the store). */
  private readonly debris: Leftover[] = [];
  private pending = new Set<PendingFileOp>();
  private generation = 0;
  readonly stats = { written: 0, crashes: 0, lostWrites: 0, tornFiles: 0, tornFinalNames: 0 };
  /** Called when a checkpoint write starts, with the virtual ms until it is durable (the simulator's crash points). */
  onWriteIssued: ((latencyMs: number) => void) | undefined;

  constructor(
    private readonly prng: Prng,
    private readonly schedule: Scheduler,
    private readonly options: SimCheckpointOptions = defaultCheckpointOptions,
  ) {}

  /** The store for the node's current incarnation. */
  open(): SimCheckpointStore {
    return new SimCheckpointStore(this, this.generation);
  }

  isCurrent(generation: number): boolean {
    return generation === this.generation;
  }

  leftovers(): readonly Leftover[] {
    return this.debris;
  }

  file(groupId: number, index: LogIndex): Uint8Array | undefined {
    return this.files.get(fileName(groupId, index))?.data;
  }

  indexes(groupId: number): LogIndex[] {
    const out: LogIndex[] = [];
    for (const file of this.files.values()) if (file.groupId === groupId) out.push(file.index);
    return out.sort((a, b) => a - b);
  }

  startWrite(groupId: number, index: LogIndex, data: Uint8Array): Promise<void> {
    const op: PendingFileOp = { kind: "write", groupId, index, data };
    const o = this.options;
    const latencyMs = o.writeMsMin + this.prng.nextFloat() * (o.writeMsMax - o.writeMsMin);
    this.onWriteIssued?.(latencyMs);
    return this.run(op, latencyMs, () => {
      this.files.set(fileName(groupId, index), { groupId, index, data: op.data! });
      this.stats.written++;
    });
  }

  startRemove(groupId: number, index: LogIndex | undefined): Promise<void> {
    const op: PendingFileOp = { kind: "remove", groupId, index: index ?? -1 };
    return this.run(op, this.prng.nextFloat() * this.options.removeMsMax, () => {
      for (const [name, file] of this.files)
        if (file.groupId === groupId && (index === undefined || file.index === index)) this.files.delete(name);
    });
  }

  private run(op: PendingFileOp, latencyMs: number, done: () => void): Promise<void> {
    const generation = this.generation;
    this.pending.add(op);
    return new Promise<void>((resolve) => {
      this.schedule(latencyMs, () => {
        if (generation !== this.generation) return; // crashed first: crash() decided
        this.pending.delete(op);
        done();
        resolve();
      });
    });
  }

  /** Power loss: unfinished writes are lost or leave a torn temporary file; unfinished removes may not have happened. */
  crash(): { lost: number; torn: number } {
    this.generation++;
    this.stats.crashes++;
    let lost = 0;
    let torn = 0;
    for (const op of this.pending) {
      if (op.kind === "remove") {
        // The unlink may or may not have reached the disk.
        if (this.prng.chance(0.5)) {
          for (const [name, file] of this.files)
            if (file.groupId === op.groupId && (op.index < 0 || file.index === op.index)) this.files.delete(name);
        }
        continue;
      }
      const data = op.data!;
      if (data.length === 0 || this.prng.chance(0.4)) {
        lost++;
        continue;
      }
      let damaged: Uint8Array;
      let damage: Leftover["damage"];
      if (this.prng.chance(0.5)) {
        damaged = data.slice(0, this.prng.nextInt(data.length));
        damage = "torn-prefix";
      } else {
        damaged = data.slice();
        const flips = 1 + this.prng.nextInt(3);
        for (let i = 0; i < flips; i++) damaged[this.prng.nextInt(damaged.length)]! ^= 1 << this.prng.nextInt(8);
        damage = "flipped";
      }
      torn++;
      if (this.options.tearFinalNames) {
        this.files.set(fileName(op.groupId, op.index), { groupId: op.groupId, index: op.index, data: damaged });
        this.stats.tornFinalNames++;
      } else {
        this.debris.push({ groupId: op.groupId, index: op.index, damage, data: damaged });
      }
    }
    this.stats.lostWrites += lost;
    this.stats.tornFiles += torn;
    this.pending = new Set();
    return { lost, torn };
  }
}

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/** One incarnation's checkpoint store. */
export class SimCheckpointStore implements CheckpointStore {
  constructor(
    private readonly disk: SimCheckpointDisk,
    private readonly generation: number,
  ) {}

  private get alive(): boolean {
    return this.disk.isCurrent(this.generation);
  }

  write(groupId: number, index: LogIndex, blocks: readonly Uint8Array[]): Promise<void> {
    if (!this.alive) return never();
    assert(Number.isSafeInteger(index) && index > 0, `checkpoint index must be positive, got ${index}`);
    let length = 0;
    for (const block of blocks) length += block.length;
    const data = new Uint8Array(length);
    let offset = 0;
    for (const block of blocks) {
      data.set(block, offset);
      offset += block.length;
    }
    return this.disk.startWrite(groupId, index, data);
  }

  read(groupId: number, index: LogIndex): Promise<Uint8Array> {
    if (!this.alive) return never();
    const data = this.disk.file(groupId, index);
    if (data === undefined) return Promise.reject(new Error(`checkpoint ${fileName(groupId, index)} does not exist`));
    return Promise.resolve(data.slice());
  }

  readChunk(groupId: number, index: LogIndex, offset: number, length: number): Promise<Uint8Array> {
    if (!this.alive) return never();
    const data = this.disk.file(groupId, index);
    if (data === undefined) return Promise.reject(new Error(`checkpoint ${fileName(groupId, index)} does not exist`));
    assert(offset >= 0 && length >= 0, "readChunk: offset and length must be non-negative");
    return Promise.resolve(data.slice(offset, offset + length));
  }

  size(groupId: number, index: LogIndex): Promise<number> {
    if (!this.alive) return never();
    const data = this.disk.file(groupId, index);
    if (data === undefined) return Promise.reject(new Error(`checkpoint ${fileName(groupId, index)} does not exist`));
    return Promise.resolve(data.length);
  }

  list(groupId: number): Promise<LogIndex[]> {
    if (!this.alive) return never();
    return Promise.resolve(this.disk.indexes(groupId));
  }

  remove(groupId: number, index: LogIndex): Promise<void> {
    if (!this.alive) return never();
    return this.disk.startRemove(groupId, index);
  }

  removeGroup(groupId: number): Promise<void> {
    if (!this.alive) return never();
    return this.disk.startRemove(groupId, undefined);
  }
}
