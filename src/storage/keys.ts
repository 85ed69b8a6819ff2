/**
 * Key layout of the node's single LevelDB (the log store). Every group (shard or meta) lives in the
 * same database, so one write batch can persist the Ready of many groups at once (group commit
 * across groups).
 *
 * What it holds (format 2, STORE_FORMAT_VERSION in records.ts): each group's Raft log, hard state,
 * conf state and snapshot record; the metadata group's whole state and applied index; a shard's
 * descriptor for a replica that waits for its first snapshot; tombstones of removed replicas; and
 * the store's identity. A shard's state (counters, sessions, request ids, kinds) is NOT here: it is
 * durable as the shard's log plus its checkpoint files (checkpoint-store.ts, beside this database;
 * docs/architecture.md "Checkpoints, snapshots and log compaction"), and the shard's 'P' record
 * names the checkpoint a restart starts from.
 *
 * All integers are big-endian so that LevelDB's bytewise order is numeric order: a range scan over
 * `L|group` returns that group's log in index order, and groups never interleave.
 *
 *   key                                   value (see records.ts; every value carries a CRC32C)
 *   'L' group:u32 index:u64                log entry        msgpack [term, index, type, data]
 *   'H' group:u32                          hard state       msgpack [term, vote, commit]
 *   'A' group:u32                          applied state    msgpack [appliedIndex, clockMs]; the metadata
 *                                          group only (a shard's applied index is in its checkpoint's header,
 *                                          and a restart replays the log above it)
 *   'F' group:u32                          conf state       msgpack [voters, learners, votersOutgoing, learnersNext, autoLeave]
 *   'P' group:u32                          snapshot meta    msgpack [index, term, confState, dataBytes, chunkCount, dataCrc32c];
 *                                          for a shard past its first checkpoint, metadata only (no chunks):
 *                                          the restart point, naming checkpoint file <index>.ckpt
 *   'Q' group:u32 chunk:u32                snapshot data    raw bytes of chunk `chunk` (chunks 0..chunkCount-1): the
 *                                          metadata group's snapshot, a shard's bootstrap or split snapshot
 *   'I'                                    store identity   msgpack [formatVersion]
 *   'T' group:u32                          tombstone        u64 epoch: this node's replica of the shard was removed
 *                                          at that epoch; it is re-created only for a map at a later epoch
 *   'M' group:u32                          group state      opaque bytes owned by the group's replica: the meta
 *                                          group's whole state machine; a shard's descriptor (epoch, slot range),
 *                                          read while the replica has no checkpoint or snapshot state yet
 *
 * Retired in format 2 (never reuse these letters: a format-1 directory still holds them, and the
 * identity check refuses it before anything reads them):
 *   'C' shard:u32 key:bytes                counter record   a counter's value and version
 *   'S' shard:u32 client:u64               session record   a client session
 *   'K' shard:u32 key:bytes                kind record      a key's kind and TTL
 * KeyPrefix keeps their bytes (KeyPrefix.counter, .session, .kind) so tools that split an old
 * directory's size by kind still name them; nothing in this build writes or reads them.
 *
 * One prefix byte per kind; the ASCII letters are readable in a hex dump. Group ids are u32; log
 * indexes are u64 on disk but limited to 2^53 - 1 in memory (exact JS numbers; see raft/types.ts
 * for why that bound is never reached).
 */
import { assert } from "../util/assert.js";

export const KeyPrefix = {
  log: 0x4c, // 'L'
  hardState: 0x48, // 'H'
  applied: 0x41, // 'A'
  confState: 0x46, // 'F'
  snapshotMeta: 0x50, // 'P'
  snapshotChunk: 0x51, // 'Q'
  /** Retired in format 2 (header): kept so the letter is never reused. */
  counter: 0x43, // 'C'
  /** Retired in format 2 (header): kept so the letter is never reused. */
  session: 0x53, // 'S'
  /** Retired in format 2 (header): kept so the letter is never reused. */
  kind: 0x4b, // 'K'
  identity: 0x49, // 'I'
  meta: 0x4d, // 'M'
  tombstone: 0x54, // 'T'
} as const;

/** Half-open key range [gte, lt). */
export interface KeyRange {
  gte: Uint8Array;
  lt: Uint8Array;
}

const U32_MAX = 0xffff_ffff;
const TWO_POW_32 = 0x1_0000_0000;

function assertU32(value: number, what: string): void {
  assert(Number.isInteger(value) && value >= 0 && value <= U32_MAX, `${what} must be a u32, got ${value}`);
}

function assertU53(value: number, what: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, `${what} must be a non-negative safe integer, got ${value}`);
}

function writeU32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = (value >>> 16) & 0xff;
  target[offset + 2] = (value >>> 8) & 0xff;
  target[offset + 3] = value & 0xff;
}

function readU32(source: Uint8Array, offset: number): number {
  return ((source[offset]! << 24) | (source[offset + 1]! << 16) | (source[offset + 2]! << 8) | source[offset + 3]!) >>> 0;
}

function writeU64(target: Uint8Array, offset: number, value: number): void {
  writeU32(target, offset, Math.floor(value / TWO_POW_32));
  writeU32(target, offset + 4, value >>> 0);
}

function readU64(source: Uint8Array, offset: number): number {
  const value = readU32(source, offset) * TWO_POW_32 + readU32(source, offset + 4);
  assert(Number.isSafeInteger(value), "u64 in key exceeds 2^53 - 1");
  return value;
}

function groupKey(prefix: number, groupId: number, extraBytes: number): Uint8Array {
  assertU32(groupId, "group id");
  const key = new Uint8Array(5 + extraBytes);
  key[0] = prefix;
  writeU32(key, 1, groupId);
  return key;
}

/**
 * The smallest key greater than every key that starts with `prefix` (LevelDB has no "prefix"
 * bound, so ranges end at prefix + 1 with carry). Undefined when the prefix is all 0xff.
 */
export function prefixUpperBound(prefix: Uint8Array): Uint8Array | undefined {
  const bound = prefix.slice();
  for (let i = bound.length - 1; i >= 0; i--) {
    if (bound[i]! < 0xff) {
      bound[i] = bound[i]! + 1;
      return bound.subarray(0, i + 1);
    }
  }
  return undefined;
}

function prefixRange(prefix: Uint8Array): KeyRange {
  const lt = prefixUpperBound(prefix);
  assert(lt !== undefined, "key prefix has no upper bound");
  return { gte: prefix, lt };
}

// ---- log ----

export function logKey(groupId: number, index: number): Uint8Array {
  assertU53(index, "log index");
  const key = groupKey(KeyPrefix.log, groupId, 8);
  writeU64(key, 5, index);
  return key;
}

/** Log keys of `groupId` with index in [fromIndex, 2^53). */
export function logRange(groupId: number, fromIndex = 0): KeyRange {
  const { lt } = prefixRange(groupKey(KeyPrefix.log, groupId, 0));
  return { gte: logKey(groupId, fromIndex), lt };
}

export function decodeLogKey(key: Uint8Array): { groupId: number; index: number } {
  assert(key.length === 13 && key[0] === KeyPrefix.log, "not a log key");
  return { groupId: readU32(key, 1), index: readU64(key, 5) };
}

// ---- per-group singletons ----

export const hardStateKey = (groupId: number): Uint8Array => groupKey(KeyPrefix.hardState, groupId, 0);
export const appliedKey = (groupId: number): Uint8Array => groupKey(KeyPrefix.applied, groupId, 0);
export const confStateKey = (groupId: number): Uint8Array => groupKey(KeyPrefix.confState, groupId, 0);
export const snapshotMetaKey = (groupId: number): Uint8Array => groupKey(KeyPrefix.snapshotMeta, groupId, 0);
export const groupStateKey = (groupId: number): Uint8Array => groupKey(KeyPrefix.meta, groupId, 0);
export const tombstoneKey = (groupId: number): Uint8Array => groupKey(KeyPrefix.tombstone, groupId, 0);

/** Every key that starts with the prefix byte `prefix`: all groups' keys of one kind (H, A, F, P, T, ...). */
export function prefixKeyRange(prefix: number): KeyRange {
  return prefixRange(Uint8Array.of(prefix));
}

/** Every key that belongs to one group, for one kind (L, H, A, F, P, Q, M, T). */
export function groupRange(prefix: number, groupId: number): KeyRange {
  return prefixRange(groupKey(prefix, groupId, 0));
}

/** The group id of a key made by groupKey (any of L, H, A, F, P, Q, M, T). */
export function groupIdOfKey(key: Uint8Array): number {
  assert(key.length >= 5, "key too short to hold a group id");
  return readU32(key, 1);
}

// ---- snapshot chunks ----

export function snapshotChunkKey(groupId: number, chunk: number): Uint8Array {
  assertU32(chunk, "snapshot chunk number");
  const key = groupKey(KeyPrefix.snapshotChunk, groupId, 4);
  writeU32(key, 5, chunk);
  return key;
}

/** Chunk keys of `groupId` numbered `fromChunk` and above. */
export function snapshotChunkRange(groupId: number, fromChunk = 0): KeyRange {
  const { lt } = prefixRange(groupKey(KeyPrefix.snapshotChunk, groupId, 0));
  return { gte: snapshotChunkKey(groupId, fromChunk), lt };
}

// ---- store identity ----

export const identityKey = (): Uint8Array => Uint8Array.of(KeyPrefix.identity);

// ---- helpers ----

/** Bytewise comparison, LevelDB's default comparator. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

export function keyInRange(key: Uint8Array, range: KeyRange): boolean {
  return compareKeys(key, range.gte) >= 0 && compareKeys(key, range.lt) < 0;
}

/** Human-readable key for error messages: `L|group=3|index=17`, `Q|group=2|chunk=0`; other keys in hex. */
export function describeKey(key: Uint8Array): string {
  const prefix = key[0];
  const hex = (bytes: Uint8Array): string => "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const letter = prefix === undefined ? "?" : String.fromCharCode(prefix);
  switch (prefix) {
    case KeyPrefix.log:
      if (key.length === 13) return `L|group=${readU32(key, 1)}|index=${readU32(key, 5) * TWO_POW_32 + readU32(key, 9)}`;
      break;
    case KeyPrefix.hardState:
    case KeyPrefix.applied:
    case KeyPrefix.confState:
    case KeyPrefix.snapshotMeta:
    case KeyPrefix.meta:
    case KeyPrefix.tombstone:
      if (key.length === 5) return `${letter}|group=${readU32(key, 1)}`;
      break;
    case KeyPrefix.snapshotChunk:
      if (key.length === 9) return `Q|group=${readU32(key, 1)}|chunk=${readU32(key, 5)}`;
      break;
    default:
      break;
  }
  return hex(key);
}
