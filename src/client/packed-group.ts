/**
 * An addBatch of plain adds (no floor) without an object per op: the caller's ops are checked and
 * written straight into the packed form (src/util/packed-adds.ts: key length u16 BE, key, delta
 * int64 LE) with their slots in a typed array, then split by shard into one PackedAddGroup each.
 * A group travels as the unit's one entry (its Waiter carries it), its bytes are the request's
 * packed_adds as they are, and its packed results are written into the caller's results array
 * directly. Ops are decoded back into MutationOps only for error messages.
 */
import { PACKED_RESULT_BYTES, checkPackedResults } from "../api/packed-batch.js";
import { slotOfRange } from "../meta/slots.js";
import { InvalidArgumentError } from "../util/errors.js";
import { readInt64LE } from "../util/packed-adds.js";
import { makeOp } from "./mutation-ops.js";
import { Waiter, type MutationOp, type PackedGroup, type WaiterSink } from "./mutation-unit.js";
import type { RouteTable } from "./routing.js";
import type { BatchOp, MutationResult } from "./types.js";
import { KEY_BYTES_MAX, KEY_BYTES_MIN, toInt64, type Fence } from "./values.js";

const KEY_LENGTH_BYTES = 2;
const DELTA_BYTES = 8;
const TWO_32 = 2 ** 32;
/** Keys of at most this many bytes are copied byte by byte (cheaper than a native copy call). */
const SHORT_COPY_BYTES = 48;

// As in encodeKey (values.ts): a lone surrogate has no UTF-8 encoding.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

type PlainAdd = Extract<BatchOp, { op?: "add" }>;

/** Every op is a plain add (no floor): the batch can travel packed. Checks nothing else. */
export function allPlainAdds(ops: readonly BatchOp[]): boolean {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as { op?: unknown; floor?: unknown } | null | undefined;
    if (op === null || typeof op !== "object" || (op.op !== undefined && op.op !== "add") || op.floor !== undefined) return false;
  }
  return true;
}

/** A caller's batch of plain adds in packed form, in the caller's order, checked as parseBatchOp checks. */
export class PackedBatch {
  /** Where each op's record starts in `bytes` (its end is the next one's start). */
  readonly starts: Int32Array;
  readonly slots: Uint16Array;
  bytes: Buffer;
  size = 0;

  /** `ops`: plain adds (allPlainAdds); throws InvalidArgumentError naming the first bad op. */
  constructor(readonly ops: readonly BatchOp[]) {
    const count = ops.length;
    this.starts = new Int32Array(count + 1);
    this.slots = new Uint16Array(count);
    this.bytes = Buffer.allocUnsafe(Math.max(64, count * 32));
    for (let i = 0; i < count; i++) this.append(ops[i] as PlainAdd, i);
    this.starts[count] = this.size;
  }

  private append(op: PlainAdd, index: number): void {
    let delta: bigint;
    try {
      delta = toInt64(op.delta ?? 1n, "delta");
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw new InvalidArgumentError(`ops[${index}]: ${error.message}`);
      throw error;
    }
    const key: unknown = op.key;
    const at = this.size;
    const keyAt = at + KEY_LENGTH_BYTES;
    let length: number;
    if (typeof key === "string") {
      this.reserve(KEY_LENGTH_BYTES + key.length * 3 + DELTA_BYTES);
      length = writeString(this.bytes, key, keyAt);
      if (length !== key.length && loneSurrogate.test(key))
        throw new InvalidArgumentError(`ops[${index}]: key is not well-formed Unicode (lone surrogate)`);
    } else if (key instanceof Uint8Array) {
      length = key.length;
      this.reserve(KEY_LENGTH_BYTES + length + DELTA_BYTES);
      this.bytes.set(key, keyAt);
    } else {
      throw new InvalidArgumentError(`ops[${index}]: key must be a string or Uint8Array, got ${typeof key}`);
    }
    if (length < KEY_BYTES_MIN || length > KEY_BYTES_MAX)
      throw new InvalidArgumentError(`ops[${index}]: key must be ${KEY_BYTES_MIN}..${KEY_BYTES_MAX} bytes, got ${length}`);
    const bytes = this.bytes;
    bytes[at] = length >>> 8;
    bytes[at + 1] = length & 0xff;
    writeInt64LE(bytes, delta, keyAt + length);
    this.starts[index] = at;
    this.slots[index] = slotOfRange(bytes, keyAt, keyAt + length);
    this.size = keyAt + length + DELTA_BYTES;
  }

  private reserve(bytes: number): void {
    if (this.size + bytes <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.size + bytes));
    this.bytes.copy(grown, 0, 0, this.size);
    this.bytes = grown;
  }

  /**
   * The ops split by the shard their slot maps to (-1: no route yet), each in the caller's order.
   * `results`: the caller's results array, which the groups fill in.
   */
  groupByShard(routes: RouteTable, results: MutationResult[]): PackedAddGroup[] {
    const count = this.slots.length;
    const groupOf = new Int32Array(count);
    const groupOfShard = new Map<number, number>();
    const counts: number[] = [];
    const sizes: number[] = [];
    const starts = this.starts;
    for (let i = 0; i < count; i++) {
      const shardId = routes.lookup(this.slots[i]!)?.shardId ?? -1;
      let group = groupOfShard.get(shardId);
      if (group === undefined) {
        group = counts.length;
        groupOfShard.set(shardId, group);
        counts.push(0);
        sizes.push(0);
      }
      groupOf[i] = group;
      counts[group]!++;
      sizes[group]! += starts[i + 1]! - starts[i]!;
    }
    const groups = counts.map((groupCount, g) => new GroupBuilder(groupCount, sizes[g]!));
    for (let i = 0; i < count; i++) groups[groupOf[i]!]!.add(this, i);
    return groups.map((builder) => builder.build(this.ops, results));
  }
}

/** Writes `text` as UTF-8 at `at` (room for 3 bytes per UTF-16 unit is reserved); returns its byte length. */
function writeString(bytes: Buffer, text: string, at: number): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return bytes.write(text, at, "utf8");
    bytes[at + i] = code;
  }
  return text.length;
}

const INT32_MIN = -0x8000_0000n;
const INT32_MAX = 0x7fff_ffffn;

/** writeBigInt64LE, without bigint arithmetic for the common small deltas. */
function writeInt64LE(bytes: Buffer, value: bigint, at: number): void {
  if (value < INT32_MIN || value > INT32_MAX) {
    bytes.writeBigInt64LE(value, at);
    return;
  }
  const low = Number(value);
  const high = low < 0 ? 0xff : 0;
  bytes[at] = low & 0xff;
  bytes[at + 1] = (low >>> 8) & 0xff;
  bytes[at + 2] = (low >>> 16) & 0xff;
  bytes[at + 3] = (low >>> 24) & 0xff;
  bytes[at + 4] = high;
  bytes[at + 5] = high;
  bytes[at + 6] = high;
  bytes[at + 7] = high;
}

/** Collects one group's records from a PackedBatch (or a group, when a unit splits). */
class GroupBuilder {
  private readonly bytes: Buffer;
  private readonly slots: Uint16Array;
  private readonly positions: Int32Array;
  private at = 0;
  private count = 0;

  constructor(count: number, size: number) {
    this.bytes = Buffer.allocUnsafe(size);
    this.slots = new Uint16Array(count);
    this.positions = new Int32Array(count);
  }

  /** Op `i` of a batch (its position is i) or of a group (its position carries over). */
  add(source: PackedBatch | PackedAddGroup, i: number): void {
    const from = source.starts[i]!;
    const to = source.starts[i + 1]!;
    const bytes = this.bytes;
    if (to - from <= SHORT_COPY_BYTES) {
      const sourceBytes = source.bytes;
      for (let b = from, at = this.at; b < to; b++, at++) bytes[at] = sourceBytes[b]!;
    } else {
      source.bytes.copy(bytes, this.at, from, to);
    }
    this.at += to - from;
    this.slots[this.count] = source.slots[i]!;
    this.positions[this.count] = source instanceof PackedAddGroup ? source.positions[i]! : i;
    this.count++;
  }

  build(callerOps: readonly BatchOp[], results: MutationResult[]): PackedAddGroup {
    return new PackedAddGroup(this.bytes, this.slots, this.positions, callerOps, results);
  }
}

/** Plain adds bound for one shard: a request's packed_adds, and where their results go. */
export class PackedAddGroup implements PackedGroup {
  /** Where each op's record starts in `bytes`, and the end. */
  readonly starts: Int32Array;
  /** The caller's index of the op the server named as the batch's failure. */
  blamedPosition: number | undefined;

  constructor(
    readonly bytes: Buffer,
    readonly slots: Uint16Array,
    /** The caller's index of each op. */
    readonly positions: Int32Array,
    /** The caller's ops, for naming a key the way the caller gave it (failures only). */
    private readonly callerOps: readonly BatchOp[],
    private readonly results: MutationResult[],
  ) {
    this.starts = new Int32Array(slots.length + 1);
    let at = 0;
    for (let i = 0; i < slots.length; i++) {
      this.starts[i] = at;
      at += KEY_LENGTH_BYTES + ((bytes[at]! << 8) | bytes[at + 1]!) + DELTA_BYTES;
    }
    this.starts[slots.length] = at;
  }

  get count(): number {
    return this.slots.length;
  }

  /** The ops at `indexes` (of this group) as a group of their own (a unit split across shards). */
  subset(indexes: readonly number[]): PackedAddGroup {
    let size = 0;
    for (const i of indexes) size += this.starts[i + 1]! - this.starts[i]!;
    const builder = new GroupBuilder(indexes.length, size);
    for (const i of indexes) builder.add(this, i);
    return builder.build(this.callerOps, this.results);
  }

  /** Op `i` as a MutationOp, for messages (failures only). */
  opAt(i: number): MutationOp {
    const keyAt = this.starts[i]! + KEY_LENGTH_BYTES;
    const deltaAt = this.starts[i + 1]! - DELTA_BYTES;
    const key = Buffer.from(this.bytes.subarray(keyAt, deltaAt));
    const op = makeOp("add", key, { delta: this.bytes.readBigInt64LE(deltaAt) });
    const given: unknown = this.callerOps[this.positions[i]!]?.key;
    if (typeof given === "string" || given instanceof Uint8Array) op.keyInput = given;
    return op;
  }

  /** The server's packed results, into the caller's results; throws InvalidArgumentError (writing nothing) if malformed. */
  resolve(packed: Uint8Array, fence: Fence): void {
    checkPackedResults(packed, this.count);
    const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
    const results = this.results;
    // Every op of one request changes its counter at the same log index: one bigint serves them.
    let version = -1;
    let versionBig = 0n;
    for (let i = 0, at = 0; i < this.count; i++, at += PACKED_RESULT_BYTES) {
      const opVersion = view.getUint32(at + 12, true) * TWO_32 + view.getUint32(at + 8, true);
      if (opVersion !== version) versionBig = BigInt((version = opVersion));
      results[this.positions[i]!] = { value: readInt64LE(view, at), version: versionBig, fence };
    }
  }
}

/** The waiter of a group of packed adds, with its own deadline timer (its `op`, the group's first, names it). */
export function groupWaiter(group: PackedGroup, deadlineAtMs: number, signal: AbortSignal | undefined, sink: WaiterSink): Waiter {
  return new Waiter(group.opAt(0), deadlineAtMs, signal, sink, group.positions[0]!, true, group);
}
