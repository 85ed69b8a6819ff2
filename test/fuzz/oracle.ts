/**
 * The fuzzer's model of every counter it ever named. A mutation that the server reports as
 * applied is replayed here and its reply checked (value, version); a request that failed must
 * leave the model's keys unchanged, which the periodic read-back proves.
 */
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export type ModelOp =
  | { kind: "add"; key: Buffer; delta: bigint; floor?: bigint }
  | { kind: "set"; key: Buffer; value: bigint }
  | { kind: "reset"; key: Buffer }
  | { kind: "cas"; key: Buffer; expectedVersion: number; value: bigint };

export interface ModelCounter {
  value: bigint;
  version: number;
}

export type Simulated =
  | { ok: true; results: ModelCounter[]; writes: Map<string, ModelCounter | undefined> }
  | { ok: false; code: "OUT_OF_RANGE" | "FAILED_PRECONDITION" | "VERSION_MISMATCH" | "INVALID_ARGUMENT"; opIndex: number };

export const MAX_KEY_BYTES = 256;

export function keyId(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");
}

export class Oracle {
  /** Present counters; a key tracked but absent here does not exist. */
  readonly counters = new Map<string, ModelCounter>();
  /** Every storable key the fuzzer put in a request, decodable or not, by hex. */
  readonly keys = new Map<string, Buffer>();
  /** Valid mutations the fuzzer sent whose effect (or definite refusal) it confirmed. */
  appliedMutations = 0;

  /**
   * Keys a request outside the model touched (a TTL, a counter-kind op): their state is no longer
   * predictable (a TTL deletes at leader time, a kind changes what the key holds), so they are
   * neither checked nor used for valid mutations from then on.
   */
  readonly volatile = new Set<string>();

  makeVolatile(key: Uint8Array): void {
    const id = keyId(key);
    this.volatile.add(id);
    this.keys.delete(id);
    this.counters.delete(id);
  }

  isVolatile(key: Uint8Array): boolean {
    return this.volatile.has(keyId(key));
  }

  track(key: Uint8Array): void {
    if (key.length < 1 || key.length > MAX_KEY_BYTES) return;
    const id = keyId(key);
    if (this.volatile.has(id)) return;
    if (!this.keys.has(id)) this.keys.set(id, Buffer.from(key));
  }

  get(key: Uint8Array): ModelCounter | undefined {
    return this.counters.get(keyId(key));
  }

  /** What the state machine must do with `ops` applied as one entry at log index `index`. */
  simulate(ops: ModelOp[], index: number): Simulated {
    if (ops.length === 0) return { ok: false, code: "INVALID_ARGUMENT", opIndex: 0 };
    const writes = new Map<string, ModelCounter | undefined>();
    const results: ModelCounter[] = [];
    for (const [opIndex, op] of ops.entries()) {
      if (op.key.length < 1 || op.key.length > MAX_KEY_BYTES) return { ok: false, code: "INVALID_ARGUMENT", opIndex };
      const id = keyId(op.key);
      const current = writes.has(id) ? writes.get(id) : this.counters.get(id);
      switch (op.kind) {
        case "add": {
          const value = (current?.value ?? 0n) + op.delta;
          if (value < INT64_MIN || value > INT64_MAX) return { ok: false, code: "OUT_OF_RANGE", opIndex };
          if (op.floor !== undefined && value < op.floor) return { ok: false, code: "FAILED_PRECONDITION", opIndex };
          writes.set(id, { value, version: index });
          break;
        }
        case "set":
          writes.set(id, { value: op.value, version: index });
          break;
        case "reset":
          writes.set(id, undefined);
          break;
        case "cas":
          if ((current?.version ?? 0) !== op.expectedVersion) return { ok: false, code: "VERSION_MISMATCH", opIndex };
          writes.set(id, { value: op.value, version: index });
          break;
      }
      const after = writes.get(id);
      results.push(after ?? { value: 0n, version: 0 });
    }
    return { ok: true, results, writes };
  }

  commit(writes: Map<string, ModelCounter | undefined>): void {
    for (const [id, counter] of writes) {
      if (counter === undefined) this.counters.delete(id);
      else this.counters.set(id, counter);
    }
    this.appliedMutations += 1;
  }
}
