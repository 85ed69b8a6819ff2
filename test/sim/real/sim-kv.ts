/**
 * A simulated LevelDB for one simulated node: the KvEngine (src/storage/kv-engine.ts) that
 * NodeStore runs over in the real-parts simulator. It outlives the node: a crash keeps what the
 * disk made durable, and the restarted node opens a new engine handle over it.
 *
 * The model is LevelDB's: every batch goes to one write-ahead log, atomically. A batch becomes
 * visible when its write resolves (after a seeded latency; writes complete in the order they were
 * issued). A synced batch is durable when its write resolves, and makes every earlier batch durable
 * with it. An unsynced batch, or any batch whose write was issued but has not resolved, is lost or
 * kept by a crash: the crash keeps a random prefix of those batches (in issue order), never part of
 * a batch and never a later batch without the earlier ones.
 */
import type { KvEngine, KvIterator, KvRange, KvWrite } from "../../../src/storage/kv-engine.js";
import { assert } from "../../../src/util/assert.js";
import type { Prng } from "../../../src/util/prng.js";

export interface SimKvOptions {
  /** Latency of an unsynced batch write, in virtual ms: [min, max). */
  writeMsMin: number;
  writeMsMax: number;
  /** Extra latency of a synced write (the fsync). */
  syncMsMin: number;
  syncMsMax: number;
  /** Chance that an fsync stalls for up to stallMsMax. */
  stallRate: number;
  stallMsMax: number;
  /** PLANTED DEFECT (checker self-test): the disk acknowledges a sync without making the batch durable. */
  lieAboutSync?: boolean;
}

export const defaultKvOptions: SimKvOptions = {
  writeMsMin: 0.05,
  writeMsMax: 0.3,
  syncMsMin: 0.5,
  syncMsMax: 3,
  stallRate: 0.01,
  stallMsMax: 60,
};

export type Scheduler = (delayMs: number, run: () => void) => void;

const hexOf = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");

/** An ordered map of byte keys (sorted by their hex form, which sorts as the bytes do). */
export class SortedKv {
  private readonly values = new Map<string, [Uint8Array, Uint8Array]>();
  private sorted: string[] = [];

  get size(): number {
    return this.values.size;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.values.get(hexOf(key))?.[1];
  }

  apply(batch: readonly KvWrite[]): void {
    for (const op of batch) {
      const hex = hexOf(op.key);
      if (op.type === "put") {
        if (!this.values.has(hex)) this.sorted.splice(this.lowerBound(hex), 0, hex);
        this.values.set(hex, [op.key, op.value]);
      } else if (this.values.delete(hex)) {
        this.sorted.splice(this.lowerBound(hex), 1);
      }
    }
  }

  range(range: KvRange): Array<[Uint8Array, Uint8Array]> {
    const lt = hexOf(range.lt);
    const out: Array<[Uint8Array, Uint8Array]> = [];
    const limit = range.limit ?? Number.POSITIVE_INFINITY;
    for (let i = this.lowerBound(hexOf(range.gte)); i < this.sorted.length && out.length < limit; i++) {
      const hex = this.sorted[i]!;
      if (hex >= lt) break;
      out.push(this.values.get(hex)!);
    }
    return out;
  }

  clone(): SortedKv {
    const copy = new SortedKv();
    for (const [hex, pair] of this.values) copy.values.set(hex, pair);
    copy.sorted = [...this.sorted];
    return copy;
  }

  /** A digest of every key and value (the trace records it at crashes). */
  digest(): number {
    let h = 0x811c9dc5;
    for (const hex of this.sorted) {
      const [key, value] = this.values.get(hex)!;
      for (const bytes of [key, value]) {
        for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
        h = Math.imul(h ^ 0xff, 0x01000193);
      }
    }
    return h >>> 0;
  }

  private lowerBound(hex: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]! < hex) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

interface PendingWrite {
  batch: KvWrite[];
  sync: boolean;
  resolve: () => void;
}

/** What a crash did to the unsynced batches: how many were at risk, how many the disk kept. */
export interface CrashOutcome {
  atRisk: number;
  kept: number;
  inFlight: number;
}

export class SimDisk {
  /** What survives a crash. */
  private durable = new SortedKv();
  /** What reads see: durable plus the resolved unsynced batches. */
  private visible = new SortedKv();
  /** Resolved batches not yet durable, in order. */
  private volatile: KvWrite[][] = [];
  /** Issued, not yet resolved, in order. */
  private inFlight: PendingWrite[] = [];
  private generation = 0;
  private busyUntilMs = 0;
  readonly stats = { batches: 0, syncs: 0, crashes: 0, batchesLost: 0, batchesKeptUnsynced: 0 };
  /** Called when a write is issued, with the virtual ms until it resolves (the simulator's crash points). */
  onWriteIssued: ((latencyMs: number, sync: boolean) => void) | undefined;

  constructor(
    private readonly prng: Prng,
    private readonly schedule: Scheduler,
    private readonly nowMs: () => number,
    private readonly options: SimKvOptions = defaultKvOptions,
  ) {}

  /** An engine handle for the node's current incarnation; it dies with the next crash. */
  open(): SimKvEngine {
    return new SimKvEngine(this, this.generation);
  }

  isCurrent(generation: number): boolean {
    return generation === this.generation;
  }

  /** Writes issued and not resolved (a crash now decides their fate). */
  get writesInFlight(): number {
    return this.inFlight.length;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.visible.get(key);
  }

  range(range: KvRange): Array<[Uint8Array, Uint8Array]> {
    return this.visible.range(range);
  }

  write(batch: readonly KvWrite[], sync: boolean): Promise<void> {
    // The disk keeps its own copy of every key and value, as a real one does.
    const copy: KvWrite[] = batch.map((op) =>
      op.type === "put" ? { type: "put", key: op.key.slice(), value: op.value.slice() } : { type: "del", key: op.key.slice() },
    );
    const o = this.options;
    let latency = o.writeMsMin + this.prng.nextFloat() * (o.writeMsMax - o.writeMsMin);
    if (sync) {
      latency += o.syncMsMin + this.prng.nextFloat() * (o.syncMsMax - o.syncMsMin);
      if (this.prng.chance(o.stallRate)) latency += this.prng.nextFloat() * o.stallMsMax;
    }
    // Completions stay in issue order: one log, one writer.
    const doneAt = Math.max(this.nowMs() + latency, this.busyUntilMs);
    this.busyUntilMs = doneAt;
    this.onWriteIssued?.(doneAt - this.nowMs(), sync);
    return new Promise<void>((resolve) => {
      const pending: PendingWrite = { batch: copy, sync, resolve };
      this.inFlight.push(pending);
      const generation = this.generation;
      this.schedule(doneAt - this.nowMs(), () => {
        if (generation !== this.generation) return; // crashed meanwhile: the crash decided
        assert(this.inFlight[0] === pending, "simulated disk: writes complete in issue order");
        this.inFlight.shift();
        this.complete(pending);
      });
    });
  }

  private complete(pending: PendingWrite): void {
    this.stats.batches++;
    this.visible.apply(pending.batch);
    this.volatile.push(pending.batch);
    if (pending.sync && !this.options.lieAboutSync) {
      this.stats.syncs++;
      for (const batch of this.volatile) this.durable.apply(batch);
      this.volatile = [];
    }
    pending.resolve();
  }

  /**
   * Power loss: every handle dies (its pending writes never resolve), and of the batches not yet
   * durable (resolved unsynced ones, then the ones in flight) a random prefix survives.
   */
  crash(): CrashOutcome {
    this.generation++;
    this.stats.crashes++;
    const atRisk = [...this.volatile, ...this.inFlight.map((pending) => pending.batch)];
    const inFlight = this.inFlight.length;
    const kept = this.prng.nextInt(atRisk.length + 1);
    for (let i = 0; i < kept; i++) this.durable.apply(atRisk[i]!);
    this.stats.batchesKeptUnsynced += kept;
    this.stats.batchesLost += atRisk.length - kept;
    this.volatile = [];
    this.inFlight = [];
    this.busyUntilMs = 0;
    this.visible = this.durable.clone();
    return { atRisk: atRisk.length, kept, inFlight };
  }

  digest(): number {
    return this.visible.digest();
  }
}

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/** One incarnation's view of a SimDisk. After a crash every call hangs: that process is gone. */
export class SimKvEngine implements KvEngine {
  private closed = false;

  constructor(
    private readonly disk: SimDisk,
    private readonly generation: number,
  ) {}

  private get alive(): boolean {
    return this.disk.isCurrent(this.generation);
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (!this.alive) return never();
    assert(!this.closed, "simulated engine used after close()");
    return Promise.resolve(this.disk.get(key));
  }

  write(ops: readonly KvWrite[], options: { sync: boolean }): Promise<void> {
    if (!this.alive) return never();
    assert(!this.closed, "simulated engine used after close()");
    return this.disk.write(ops, options.sync);
  }

  iterator(range: KvRange): KvIterator<[Uint8Array, Uint8Array]> {
    return this.rangeIterator(range, (pair) => pair);
  }

  keys(range: KvRange): KvIterator<Uint8Array> {
    return this.rangeIterator(range, (pair) => pair[0]);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** A consistent view: the range as it is when the iterator is created. */
  private rangeIterator<T>(range: KvRange, map: (pair: [Uint8Array, Uint8Array]) => T): KvIterator<T> {
    assert(!this.closed, "simulated engine used after close()");
    const items = this.alive ? this.disk.range(range).map(map) : [];
    let position = 0;
    const alive = () => this.alive;
    const iterator: KvIterator<T> = {
      nextv(size: number): Promise<T[]> {
        if (!alive()) return never();
        const out = items.slice(position, position + size);
        position += out.length;
        return Promise.resolve(out);
      },
      close(): Promise<void> {
        return Promise.resolve();
      },
      async *[Symbol.asyncIterator](): AsyncGenerator<T> {
        for (;;) {
          const batch = await iterator.nextv(64);
          if (batch.length === 0) return;
          yield* batch;
        }
      },
    };
    return iterator;
  }
}
