/**
 * Shard images: a shard's whole state at an applied index as whole blocks, the unit of a
 * checkpoint (durability = the replicated log + checkpoints; applying an entry changes memory
 * only). Three steps, so that none stalls the event loop:
 *
 *   captureImage (synchronous, between entries): copies of the counter table's blocks (its row
 *     buffer up to the high-water slot, the key arena's used bytes and its hash index: three
 *     memcpys, no per-counter work), the sessions' fields copied flat (SessionCopies: a few stores per session, their
 *     retained outcomes referenced, as those bytes never change), the kinds encoded
 *     (kind-table.ts encodeKindRecord: their structures change in place), and the request-id
 *     records referenced (immutable). The machine may go on applying: the image shares nothing
 *     that applying changes.
 *   encodeShardImage (asynchronous): the sessions and request ids encoded with their writers
 *     (sessions.ts writeSession, request-ids.ts writeRequestId) and a CRC-32 of every block, in
 *     slices (RECORDS_PER_STEP records, at most CHECKSUM_SLICE_BYTES bytes) with `await pause()`
 *     between them, then the header. No per-counter loop; the counter blocks are returned as they
 *     are (no copy).
 *   readImage (fromImage, fromImageAsync): checksums first, then the rows validated one by one
 *     (CounterTable.loadRows) and the free-slot list rebuilt; the saved hash index is adopted
 *     when it was built with this shard's hash seed (then it is checked to name every occupied row
 *     exactly once, and no key is hashed: at 1.25 M counters that halves a load), else rebuilt
 *     from the keys. Then sessions,
 *     kinds and request ids through the same checks as every other loader (shard-load.ts). The
 *     steps are a generator: fromImage runs it straight through, fromImageAsync pauses between
 *     slices. Any damage is a CorruptionError; a partly read image is never used.
 *
 * Layout: a 112-byte header (big-endian, like the shard's other formats), then six blocks, back to
 * back, in this order:
 *
 *   u32 magic "TLYI" | u16 format (2) | u8 row byte order (1 little-, 2 big-endian) | u8 blocks (6)
 *   u64 appliedIndex | u64 clockMs | u64 counterCount | u32 hash seed of the index
 *   6 x { u64 length, u32 crc32 } for the blocks below
 *   u32 crc32 of the header bytes before it
 *
 *   rows       CounterTable rows 0 .. high-water slot, 24 bytes each, in the row byte order:
 *              i64 value, f64 version, u32 key offset, u16 key length (0 = free slot), u16 flags (0)
 *   arena      the key arena's used bytes; dead keys' bytes are kept (a loaded table counts them as
 *              garbage and compacts them away as it would have)
 *   index      the open-addressing index, (slot + 1, hash) i32 pairs in the row byte order, a power
 *              of two of them; trusted under its checksum for where each key sits (a load with
 *              another hash seed ignores it)
 *   sessions   u32 count | session* (sessions.ts writeSession), least recently active first
 *   kinds      u32 count | { u16 keyLength, key, u32 recordLength, record (encodeKindRecord) }*
 *   requestIds u32 count | request id* (request-ids.ts writeRequestId), in apply order
 *
 * The CRC is CRC-32 (IEEE, zlib's crc32: the same values as node:zlib crc32), computed in pure JS
 * (src/shard may import no node: module) unless the caller passes a faster one for the blocks
 * (the server passes node:zlib's: at 10 M counters the blocks are ~600 MB a node). Rows are
 * platform-endian typed arrays: an image written on a machine of the other byte order is refused
 * (CorruptionError), not converted. Two replicas' images need not be equal (slot layouts differ),
 * but a loaded image's snapshot() equals the captured machine's byte for byte; the change log
 * (watch history) starts empty, as after restore().
 */
import { ByteReader, ByteWriter, crc32, type Crc32 } from "./binary.js";
import { ChangeLog } from "./change-log.js";
import { COUNTER_ROW_BYTES, ROWS_LITTLE_ENDIAN, type BlockBuffers, type CounterBlocks } from "./counter-table.js";
import { LoadingCounterTable } from "./counter-table-load.js";
import type { SlicePause } from "./counter-table-slices.js";
import { encodeKindRecord } from "./kind-table.js";
import { readRequestId, writeRequestId, type RequestIdRecord } from "./request-ids.js";
import { readSession, writeSession, type Session } from "./sessions.js";
import { insertLoadedRequestId, insertLoadedSession, KEY_BYTES_MAX, loadKind, type Corrupt } from "./shard-load.js";
import type { ShardState } from "./shard-state.js";
import { CorruptionError } from "../util/errors.js";
import { assert } from "../util/assert.js";

export const SHARD_IMAGE_MAGIC = 0x544c5949; // "TLYI"
const SHARD_IMAGE_FORMAT = 2;
const HEADER_BYTES = 112;
const BLOCK_NAMES = ["rows", "arena", "index", "sessions", "kinds", "request ids"] as const;
const BYTE_ORDER_LITTLE = 1;
const BYTE_ORDER_BIG = 2;
/** Bytes checksummed or copied between two pauses, at most (~1 ms). */
export const CHECKSUM_SLICE_BYTES = 1 << 20;
/** Counter rows validated and indexed between two pauses, at most (~1 ms; 200 ns a row on a busy box). */
const ROWS_PER_STEP = 8_192;
/**
 * The first slice of each loop is this fraction of the full one, and each next one twice the last:
 * the first calls of a loop run before V8 has optimized it, several times slower.
 */
const FIRST_SLICE_DIVISOR = 16;
/** Sessions, kinds or request ids encoded or decoded between two pauses. */
const RECORDS_PER_STEP = 500;

/** The whole state at the machine's applied index, as copies: the machine may go on applying. */
export interface ShardImage {
  readonly appliedIndex: number;
  readonly clockMs: number;
  /** The hash seed the counter index was built with (a load with another seed builds its own). */
  readonly hashSeed: number;
  /** Copies of the counter table's row buffer (up to its high-water slot) and key arena (used bytes). */
  readonly counters: CounterBlocks;
  /** The sessions in LRU order (least recently active first), with retained results and digests. */
  readonly sessions: SessionCopies;
  /** u32 count | { u16 keyLength, key, u32 recordLength, encodeKindRecord }* (windows, limits, HLL, TTLs). */
  readonly kinds: Uint8Array;
  /** The request-id records in apply order (immutable records, shared; encodeShardImage encodes them). */
  readonly requestIds: readonly RequestIdRecord[];
}

/** Sessions copied flat (a session's fields change in place as it is used; its retained outcomes' bytes do not). */
export interface SessionCopies {
  readonly count: number;
  /** SESSION_FIELDS per session: clientId, lastActiveMs, touchIndex, touchOrdinal, firstUnackedSeq, retained count. */
  readonly fields: Float64Array;
  readonly owners: readonly string[];
  /** The retained results of every session, back to back. */
  readonly seqs: readonly number[];
  readonly digests: readonly number[];
  readonly outcomes: readonly Uint8Array[];
}

const SESSION_FIELDS = 6;

function copySessions(sessions: Iterable<Session>, count: number): SessionCopies {
  const fields = new Float64Array(count * SESSION_FIELDS);
  const owners: string[] = new Array<string>(count);
  const seqs: number[] = [];
  const digests: number[] = [];
  const outcomes: Uint8Array[] = [];
  let i = 0;
  for (const session of sessions) {
    const at = i * SESSION_FIELDS;
    const retained = session.retainedSeqs.length;
    fields[at] = session.clientId;
    fields[at + 1] = session.lastActiveMs;
    fields[at + 2] = session.touchIndex;
    fields[at + 3] = session.touchOrdinal;
    fields[at + 4] = session.firstUnackedSeq;
    fields[at + 5] = retained;
    owners[i] = session.owner;
    for (let r = 0; r < retained; r++) {
      seqs.push(session.retainedSeqs[r]!);
      digests.push(session.retainedDigests[r]!);
      outcomes.push(session.retainedOutcomes[r]!);
    }
    i++;
  }
  return { count, fields, owners, seqs, digests, outcomes };
}

/** u32 count | writeSession*, in parts (encodeInParts). */
function encodeSessions(copies: SessionCopies, pause: () => Promise<void>): Promise<Uint8Array[]> {
  let retainedAt = 0;
  return encodeInParts(copies.count, pause, (writer, i) => {
    const at = i * SESSION_FIELDS;
    const end = retainedAt + copies.fields[at + 5]!;
    writeSession(writer, {
      clientId: copies.fields[at]!,
      lastActiveMs: copies.fields[at + 1]!,
      touchIndex: copies.fields[at + 2]!,
      touchOrdinal: copies.fields[at + 3]!,
      firstUnackedSeq: copies.fields[at + 4]!,
      owner: copies.owners[i]!,
      retainedSeqs: copies.seqs.slice(retainedAt, end),
      retainedDigests: copies.digests.slice(retainedAt, end),
      retainedOutcomes: copies.outcomes.slice(retainedAt, end),
    });
    retainedAt = end;
  });
}

/** u32 count, then writeOne(0 .. count - 1) in order: one array per slice of records, with a pause after each. */
async function encodeInParts(
  count: number,
  pause: () => Promise<void>,
  writeOne: (writer: ByteWriter, i: number) => void,
): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  const writer = new ByteWriter(64 * 1024);
  writer.u32(count);
  for (const [from, to] of slices(count, RECORDS_PER_STEP)) {
    for (let i = from; i < to; i++) writeOne(writer, i);
    parts.push(writer.finish());
    writer.reset();
    await pause();
  }
  if (count === 0) parts.push(writer.finish());
  return parts;
}

/**
 * The image of `state` now: call between entries (the machine's captureImage). spare: the counter
 * blocks' buffers of a released image, reused when large enough (CounterTable.exportBlocks).
 */
export function captureImage(state: ShardState, spare?: BlockBuffers): ShardImage {
  return { ...captureSmallParts(state), counters: state.counters.exportBlocks(spare) };
}

/**
 * captureImage() with the counter blocks copied in slices (CounterTable.exportBlocksInSlices): the
 * caller keeps the machine from applying until it resolves (the driver loop holds the shard's
 * apply), so the slices make one image at one applied index.
 */
export async function captureImageInSlices(state: ShardState, pause: SlicePause): Promise<ShardImage> {
  const appliedIndex = state.appliedIndex;
  const small = captureSmallParts(state);
  const counters = await state.counters.exportBlocksInSlices(pause);
  assert(state.appliedIndex === appliedIndex, "the shard applied entries during a sliced capture");
  return { ...small, counters };
}

function captureSmallParts(state: ShardState): Omit<ShardImage, "counters"> {
  const kindWriter = new ByteWriter(64 + state.kinds.size * 48);
  kindWriter.u32(state.kinds.size);
  for (const entry of state.kinds.values()) {
    const record = encodeKindRecord(entry);
    kindWriter.u16(entry.key.length);
    kindWriter.raw(entry.key);
    kindWriter.u32(record.length);
    kindWriter.raw(record);
  }
  return {
    appliedIndex: state.appliedIndex,
    clockMs: state.clockMs,
    hashSeed: state.options.hashSeed >>> 0,
    sessions: copySessions(state.sessions.values(), state.sessions.size),
    kinds: kindWriter.finish(),
    requestIds: [...state.requestIds.values()],
  };
}

/**
 * The image bytes as blocks (their concatenation is what fromImage reads): the header, then the
 * blocks of the layout above (the session and request-id blocks as several arrays each). The counter blocks are the
 * image's own arrays, not copies: do not change them. Every step between two pauses is bounded
 * (CHECKSUM_SLICE_BYTES checksummed, RECORDS_PER_STEP request ids encoded).
 */
export async function encodeShardImage(image: ShardImage, pause: () => Promise<void>, blockCrc: Crc32 = crc32): Promise<Uint8Array[]> {
  const sessions = await encodeSessions(image.sessions, pause);
  const requestIds = await encodeRequestIds(image.requestIds, pause);
  const index = image.counters.index;
  const indexBytes = new Uint8Array(index.buffer, index.byteOffset, index.byteLength);
  const blocks: Uint8Array[][] = [[image.counters.rows], [image.counters.arena], [indexBytes], sessions, [image.kinds], requestIds];
  const lengths: number[] = [];
  const checksums: number[] = [];
  for (const parts of blocks) {
    let length = 0;
    let crc = 0;
    for (const part of parts) {
      for (const [from, to] of slices(part.length, CHECKSUM_SLICE_BYTES)) {
        crc = blockCrc(part.subarray(from, to), crc);
        await pause();
      }
      length += part.length;
    }
    lengths.push(length);
    checksums.push(crc);
  }
  const header = new ByteWriter(HEADER_BYTES);
  header.u32(SHARD_IMAGE_MAGIC);
  header.u16(SHARD_IMAGE_FORMAT);
  header.u8(ROWS_LITTLE_ENDIAN ? BYTE_ORDER_LITTLE : BYTE_ORDER_BIG);
  header.u8(BLOCK_NAMES.length);
  header.u64(image.appliedIndex);
  header.u64(image.clockMs);
  header.u64(image.counters.count);
  header.u32(image.hashSeed >>> 0);
  for (let b = 0; b < BLOCK_NAMES.length; b++) {
    header.u64(lengths[b]!);
    header.u32(checksums[b]!);
  }
  header.crc32Trailer();
  return [header.finish(), ...blocks.flat()];
}

/**
 * Buffers for the counter blocks of an image of a table whose blocks are `bytes` now, with 1/8 of
 * slack, written once in slices with `await pause()` between them, so that a capture into them
 * meets no page faults. Reuses `spare` when it is large enough.
 */
export async function prepareImageBuffers(
  bytes: { rows: number; index: number },
  spare: BlockBuffers | undefined,
  pause: () => Promise<void>,
): Promise<BlockBuffers> {
  if (spare !== undefined && spare.rows.byteLength >= bytes.rows && spare.index.byteLength >= bytes.index) return spare;
  const buffers = {
    rows: new ArrayBuffer(bytes.rows + (bytes.rows >>> 3)),
    // The index doubles when it grows: no slack would cover that, so none is kept (the capture
    // after a doubling copies into fresh memory once).
    index: new ArrayBuffer(bytes.index),
  };
  for (const buffer of [buffers.rows, buffers.index]) {
    const view = new Uint8Array(buffer);
    for (const [from, to] of slices(view.length, CHECKSUM_SLICE_BYTES)) {
      view.fill(0, from, to);
      await pause();
    }
  }
  return buffers;
}

/** [from, to) ranges covering [0, total): the first of max / FIRST_SLICE_DIVISOR, each next twice the last, up to max. */
function* slices(total: number, max: number): Generator<[number, number], void, void> {
  let size = Math.max(1, Math.floor(max / FIRST_SLICE_DIVISOR));
  for (let from = 0; from < total;) {
    const to = Math.min(total, from + size);
    yield [from, to];
    from = to;
    size = Math.min(max, size * 2);
  }
}

/** u32 count | writeRequestId*, in parts (encodeInParts). */
function encodeRequestIds(records: readonly RequestIdRecord[], pause: () => Promise<void>): Promise<Uint8Array[]> {
  return encodeInParts(records.length, pause, (writer, i) => writeRequestId(writer, records[i]!));
}

interface ImageHeader {
  appliedIndex: number;
  clockMs: number;
  counterCount: number;
  hashSeed: number;
  blocks: Uint8Array[];
  checksums: number[];
}

function readHeader(bytes: Uint8Array, corrupt: Corrupt): ImageHeader {
  if (bytes.length < HEADER_BYTES) corrupt(`${bytes.length} bytes, shorter than the header`);
  const reader = new ByteReader(bytes.subarray(0, HEADER_BYTES), "shard image header");
  const magic = reader.u32();
  if (magic !== SHARD_IMAGE_MAGIC) corrupt(`bad magic 0x${magic.toString(16)}: not a shard image`);
  reader.verifyCrc32Trailer();
  const format = reader.u16();
  if (format !== SHARD_IMAGE_FORMAT) corrupt(`unknown format ${format} (this version reads ${SHARD_IMAGE_FORMAT})`);
  const order = reader.u8();
  if (order !== BYTE_ORDER_LITTLE && order !== BYTE_ORDER_BIG) corrupt(`bad byte order ${order}`);
  if ((order === BYTE_ORDER_LITTLE) !== ROWS_LITTLE_ENDIAN) corrupt("written on a machine of the other byte order");
  if (reader.u8() !== BLOCK_NAMES.length) corrupt(`not ${BLOCK_NAMES.length} blocks`);
  const appliedIndex = reader.u64();
  const clockMs = reader.u64();
  const counterCount = reader.u64();
  const hashSeed = reader.u32();
  const blocks: Uint8Array[] = [];
  const checksums: number[] = [];
  let offset = HEADER_BYTES;
  for (const name of BLOCK_NAMES) {
    const length = reader.u64();
    checksums.push(reader.u32());
    if (length > bytes.length - offset) corrupt(`truncated: the ${name} block needs ${length} bytes, ${bytes.length - offset} left`);
    blocks.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  if (offset !== bytes.length) corrupt(`${bytes.length - offset} bytes after the last block`);
  return { appliedIndex, clockMs, counterCount, hashSeed, blocks, checksums };
}

/**
 * Reads an image into a new state (the machine's, fresh from its constructor), yielding between
 * slices of work: each slice checksums at most CHECKSUM_SLICE_BYTES, copies at most that many
 * arena bytes, loads ROWS_PER_STEP rows or RECORDS_PER_STEP records. Throws CorruptionError.
 */
export function* readImage(state: ShardState, input: Uint8Array, blockCrc: Crc32 = crc32): Generator<void, void, void> {
  // A plain view: the readers' slice() must copy (Buffer's slice() is a view, which would keep
  // the caller's buffer alive inside the state and let its reuse change the state).
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const corrupt = (problem: string): never => {
    throw new CorruptionError(`shard image: ${problem}`);
  };
  const header = readHeader(bytes, corrupt);
  for (let b = 0; b < BLOCK_NAMES.length; b++) {
    const block = header.blocks[b]!;
    let crc = 0;
    for (const [from, to] of slices(block.length, CHECKSUM_SLICE_BYTES)) {
      crc = blockCrc(block.subarray(from, to), crc);
      yield;
    }
    if (crc !== header.checksums[b]) corrupt(`${BLOCK_NAMES[b]} block checksum mismatch`);
  }
  const [rows, arena, indexBytes, sessions, kinds, requestIds] = header.blocks as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  if (!Number.isSafeInteger(header.appliedIndex) || !Number.isSafeInteger(header.clockMs)) corrupt("bad applied index or clock");
  state.appliedIndex = header.appliedIndex;
  state.clockMs = header.clockMs;

  const table = LoadingCounterTable.forBlocks(state.options.hashSeed, header.counterCount, rows.length, arena.length, corrupt);
  yield; // its allocations take a turn of their own
  for (const [from, to] of slices(arena.length, CHECKSUM_SLICE_BYTES)) {
    table.loadArenaBytes(arena, from, to);
    yield;
  }
  // The saved index, when it was built for this seed: no key is hashed again (the slow part of a
  // load at millions of counters). Otherwise one is built as the rows go in.
  const adopt = header.hashSeed === state.options.hashSeed >>> 0 && indexBytes.length % 8 === 0 && indexBytes.length > 0;
  if (adopt) {
    const words = new Int32Array(indexBytes.length / 4);
    yield;
    const wordBytes = new Uint8Array(words.buffer);
    for (const [from, to] of slices(indexBytes.length, CHECKSUM_SLICE_BYTES)) {
      wordBytes.set(indexBytes.subarray(from, to), from);
      yield;
    }
    table.adoptIndex(words, corrupt);
  } else {
    table.sizeIndex();
    yield;
    for (const [from, to] of slices(table.indexEntries, CHECKSUM_SLICE_BYTES / 8)) {
      table.touchIndex(from, to);
      yield;
    }
  }
  const limits = { keyBytesMax: KEY_BYTES_MAX, versionMax: state.appliedIndex };
  const slots = rows.length / COUNTER_ROW_BYTES;
  for (const [from, to] of slices(slots, ROWS_PER_STEP)) {
    table.loadRows(rows, from, to, limits, corrupt);
    yield;
  }
  if (adopt) {
    for (const [from, to] of slices(table.indexEntries, ROWS_PER_STEP * 8)) {
      table.checkIndexEntries(from, to, corrupt);
      yield;
    }
  }
  table.finishLoad(corrupt);
  state.counters = table;

  yield* readRecords(sessions, "sessions", 40, (reader) => insertLoadedSession(state, readSession(reader), corrupt));
  yield* readRecords(kinds, "kinds", 24, (reader) => {
    const keyLength = reader.u16();
    if (keyLength < 1 || keyLength > KEY_BYTES_MAX) reader.fail(`kind key length ${keyLength}`);
    const key = reader.raw(keyLength);
    loadKind(state, key, reader.subarray(reader.u32()), corrupt);
  });
  yield* readRecords(requestIds, "request ids", 45, (reader) => insertLoadedRequestId(state, readRequestId(reader), corrupt));
  state.changeLog = new ChangeLog(state.appliedIndex);
}

/** u32 count | count records of at least minBytes each, read by readOne; yields every RECORDS_PER_STEP. */
function* readRecords(
  block: Uint8Array,
  what: string,
  minBytes: number,
  readOne: (reader: ByteReader) => void,
): Generator<void, void, void> {
  const reader = new ByteReader(block, `shard image ${what}`);
  const count = reader.u32();
  if (count * minBytes > reader.remaining) reader.fail(`count ${count} exceeds the block`);
  for (let i = 0; i < count; i++) {
    readOne(reader);
    if ((i + 1) % RECORDS_PER_STEP === 0) yield;
  }
  reader.expectEnd();
  yield;
}
