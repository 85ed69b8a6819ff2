/**
 * Value encodings of the node store. Every value is sealed as
 *
 *   crc32c:u32 (big-endian) | payload
 *
 * where the CRC covers the key and then the payload (crc32c(payload, crc32c(key))). Covering the
 * key as well means a value that ends up under the wrong key (a misdirected write, a bug in key
 * arithmetic) is detected like a flipped bit. Checksums are computed just before the write and
 * verified on every read (TigerBeetle: pair the assertions); a mismatch throws CorruptionError and
 * no bytes of the bad value reach the caller.
 *
 * Payloads are msgpack arrays (compact, positional) except snapshot chunks, group state records and
 * tombstones, which are opaque bytes. A shard's state has no records here (format 2): it is in its
 * checkpoint files (checkpoint-store.ts), whose format carries its own checksums.
 */
import { Packr } from "msgpackr";
import type { ConfState, Entry, HardState, SnapshotMetadata } from "../raft/types.js";
import { EntryType } from "../raft/types.js";
import { assert } from "../util/assert.js";
import { CorruptionError } from "../util/errors.js";
import { crc32c } from "./crc32c.js";
import { describeKey } from "./keys.js";

const packr = new Packr({ useRecords: false, moreTypes: false });

const CHECKSUM_BYTES = 4;

/**
 * Current on-disk format; bump on any incompatible change to keys.ts or this file. 2: a shard's
 * state is its checkpoint files plus its log (no per-counter, session or kind records, and no
 * applied-state record for a shard: only the metadata group keeps one); NodeStore.open() refuses a
 * format-1 directory with a message saying what to do instead.
 */
export const STORE_FORMAT_VERSION = 2;

function hexKey(key: Uint8Array): string {
  return "0x" + Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("");
}

function corruption(key: Uint8Array, what: string, why: string): CorruptionError {
  return new CorruptionError(`corrupt ${what} at ${describeKey(key)} (key ${hexKey(key)}): ${why}`);
}

export function sealValue(key: Uint8Array, payload: Uint8Array): Uint8Array {
  const value = new Uint8Array(CHECKSUM_BYTES + payload.length);
  const checksum = crc32c(payload, crc32c(key));
  value[0] = checksum >>> 24;
  value[1] = (checksum >>> 16) & 0xff;
  value[2] = (checksum >>> 8) & 0xff;
  value[3] = checksum & 0xff;
  value.set(payload, CHECKSUM_BYTES);
  return value;
}

/** Verifies the checksum and returns the payload (a view into `value`). `what` names the record in errors. */
export function openValue(key: Uint8Array, value: Uint8Array, what: string): Uint8Array {
  if (value.length < CHECKSUM_BYTES) {
    throw corruption(key, what, `value of ${value.length} bytes is shorter than its checksum`);
  }
  const stored = ((value[0]! << 24) | (value[1]! << 16) | (value[2]! << 8) | value[3]!) >>> 0;
  // A plain Uint8Array view: LevelDB hands out Buffers, callers compare and keep Uint8Arrays.
  const payload = new Uint8Array(value.buffer, value.byteOffset + CHECKSUM_BYTES, value.byteLength - CHECKSUM_BYTES);
  const computed = crc32c(payload, crc32c(key));
  if (stored !== computed) {
    throw corruption(
      key,
      what,
      `checksum mismatch (stored 0x${stored.toString(16).padStart(8, "0")}, computed 0x${computed.toString(16).padStart(8, "0")})`,
    );
  }
  return payload;
}

function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Checked msgpack decode of a payload whose checksum already matched (so a failure is a writer bug). */
function unpackArray(key: Uint8Array, payload: Uint8Array, what: string, length: number): unknown[] {
  let decoded: unknown;
  try {
    decoded = packr.unpack(payload);
  } catch (error) {
    throw corruption(key, what, `undecodable payload: ${(error as Error).message}`);
  }
  if (!Array.isArray(decoded) || decoded.length !== length) {
    throw corruption(key, what, `expected an array of ${length} fields`);
  }
  return decoded;
}

function field(key: Uint8Array, what: string, name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw corruption(key, what, `field ${name} is not a non-negative safe integer`);
  }
  return value;
}

function bytesField(key: Uint8Array, what: string, name: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw corruption(key, what, `field ${name} is not bytes`);
  // msgpackr hands out Buffers; callers compare and store plain Uint8Arrays.
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function idList(key: Uint8Array, what: string, name: string, value: unknown): number[] {
  if (!Array.isArray(value)) throw corruption(key, what, `field ${name} is not a list`);
  return value.map((id, i) => field(key, what, `${name}[${i}]`, id));
}

// ---- log entries ----

export function encodeEntry(key: Uint8Array, entry: Entry): Uint8Array {
  return sealValue(key, pack([entry.term, entry.index, entry.type, entry.data]));
}

export function decodeEntry(key: Uint8Array, value: Uint8Array, expectedIndex: number): Entry {
  const what = "log entry";
  const fields = unpackArray(key, openValue(key, value, what), what, 4);
  const term = field(key, what, "term", fields[0]);
  const index = field(key, what, "index", fields[1]);
  const type = field(key, what, "type", fields[2]);
  const data = bytesField(key, what, "data", fields[3]);
  if (index !== expectedIndex) throw corruption(key, what, `entry says index ${index}`);
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw corruption(key, what, `unknown entry type ${type}`);
  return { term, index, type, data };
}

// ---- hard state ----

export function encodeHardState(key: Uint8Array, hardState: HardState): Uint8Array {
  return sealValue(key, pack([hardState.term, hardState.vote, hardState.commit]));
}

export function decodeHardState(key: Uint8Array, value: Uint8Array): HardState {
  const what = "hard state";
  const fields = unpackArray(key, openValue(key, value, what), what, 3);
  return {
    term: field(key, what, "term", fields[0]),
    vote: field(key, what, "vote", fields[1]),
    commit: field(key, what, "commit", fields[2]),
  };
}

// ---- applied state ----

export interface AppliedState {
  index: number;
  /** The shard state machine's clock: the leader timestamp of the last applied entry. */
  clockMs: number;
}

export function encodeApplied(key: Uint8Array, applied: AppliedState): Uint8Array {
  return sealValue(key, pack([applied.index, applied.clockMs]));
}

export function decodeApplied(key: Uint8Array, value: Uint8Array): AppliedState {
  const what = "applied state";
  const fields = unpackArray(key, openValue(key, value, what), what, 2);
  return { index: field(key, what, "index", fields[0]), clockMs: field(key, what, "clockMs", fields[1]) };
}

// ---- conf state ----

function confStateFields(confState: ConfState): unknown[] {
  return [confState.voters, confState.learners, confState.votersOutgoing, confState.learnersNext, confState.autoLeave];
}

function confStateFromFields(key: Uint8Array, what: string, value: unknown): ConfState {
  if (!Array.isArray(value) || value.length !== 5) throw corruption(key, what, "conf state is not an array of 5 fields");
  const autoLeave = value[4];
  if (typeof autoLeave !== "boolean") throw corruption(key, what, "field autoLeave is not a boolean");
  return {
    voters: idList(key, what, "voters", value[0]),
    learners: idList(key, what, "learners", value[1]),
    votersOutgoing: idList(key, what, "votersOutgoing", value[2]),
    learnersNext: idList(key, what, "learnersNext", value[3]),
    autoLeave,
  };
}

export function encodeConfState(key: Uint8Array, confState: ConfState): Uint8Array {
  return sealValue(key, pack(confStateFields(confState)));
}

export function decodeConfState(key: Uint8Array, value: Uint8Array): ConfState {
  const what = "conf state";
  const payload = openValue(key, value, what);
  let decoded: unknown;
  try {
    decoded = packr.unpack(payload);
  } catch (error) {
    throw corruption(key, what, `undecodable payload: ${(error as Error).message}`);
  }
  return confStateFromFields(key, what, decoded);
}

// ---- snapshot metadata ----

export interface StoredSnapshotMeta {
  metadata: SnapshotMetadata;
  dataBytes: number;
  chunkCount: number;
  /** CRC32C of the whole data, checked after the chunks are reassembled. */
  dataCrc32c: number;
}

export function encodeSnapshotMeta(key: Uint8Array, meta: StoredSnapshotMeta): Uint8Array {
  const { metadata } = meta;
  return sealValue(
    key,
    pack([metadata.index, metadata.term, confStateFields(metadata.confState), meta.dataBytes, meta.chunkCount, meta.dataCrc32c]),
  );
}

export function decodeSnapshotMeta(key: Uint8Array, value: Uint8Array): StoredSnapshotMeta {
  const what = "snapshot metadata";
  const fields = unpackArray(key, openValue(key, value, what), what, 6);
  const meta: StoredSnapshotMeta = {
    metadata: {
      index: field(key, what, "index", fields[0]),
      term: field(key, what, "term", fields[1]),
      confState: confStateFromFields(key, what, fields[2]),
    },
    dataBytes: field(key, what, "dataBytes", fields[3]),
    chunkCount: field(key, what, "chunkCount", fields[4]),
    dataCrc32c: field(key, what, "dataCrc32c", fields[5]),
  };
  if (meta.dataCrc32c > 0xffff_ffff) throw corruption(key, what, "dataCrc32c is not a u32");
  return meta;
}

// ---- store identity ----

export function encodeIdentity(key: Uint8Array, formatVersion: number): Uint8Array {
  assert(Number.isInteger(formatVersion) && formatVersion > 0, "format version must be a positive integer");
  return sealValue(key, pack([formatVersion]));
}

export function decodeIdentity(key: Uint8Array, value: Uint8Array): number {
  const what = "store identity";
  const fields = unpackArray(key, openValue(key, value, what), what, 1);
  return field(key, what, "formatVersion", fields[0]);
}
