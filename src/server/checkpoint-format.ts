/**
 * A shard checkpoint's bytes: what a checkpoint file holds and what a follower receives as the
 * shard's Raft snapshot data. A small header, then the shard image (src/shard/shard-image.ts),
 * whose blocks each carry their own checksum, compressed with raw DEFLATE:
 *
 *   u32 magic "TLYK" | u16 format | u32 shard id | u64 index | u64 term
 *   u8 compression (0 none, 1 raw DEFLATE) | u64 image bytes (uncompressed) | u32 crc32 of the stored image
 *   u32 confLength | conf state (records.ts encodeConfState, sealed with its own CRC32C)
 *   u32 descriptorLength | descriptor (descriptor.ts encodeDescriptor)
 *   u32 crc32 of the header bytes before it
 *   the shard image, compressed
 *
 * Compression runs on libuv's thread pool (zlib streams), never on the event loop: at 1.25 M
 * counters with keys like `user:0000123456:likes` an image is ~45 bytes per counter and its
 * compressed form several times smaller, which is what keeps a node's disk within its budget.
 * The stored (compressed) image has its own CRC-32, checked before it is inflated, so any damage
 * is found, even where DEFLATE would not notice it (padding bits); the image's blocks have theirs.
 *
 * A shard's snapshot data is either this or, for a snapshot written inside an apply (a split's new
 * shard) or by a restore, descriptor.ts's wrapShardSnapshot of the machine's deterministic
 * snapshot(); decodeShardSnapshotData reads both.
 */
import { constants, createDeflateRaw, createInflateRaw, crc32, inflateRawSync } from "node:zlib";
import type { ConfState } from "../raft/types.js";
import { encodeShardImage, type ShardImage } from "../shard/shard-image.js";
import { CounterStateMachine, type ShardOptions } from "../shard/state-machine.js";
import { confStateKey } from "../storage/keys.js";
import { decodeConfState, encodeConfState } from "../storage/records.js";
import { CorruptionError } from "../util/errors.js";
import { decodeDescriptor, encodeDescriptor, unwrapShardSnapshot, type ShardDescriptor } from "./descriptor.js";

const CHECKPOINT_MAGIC = 0x544c594b; // "TLYK"
const CHECKPOINT_FORMAT = 1;
const COMPRESSION_NONE = 0;
const COMPRESSION_DEFLATE = 1;
/** DEFLATE level: the fastest (the keys and small numbers of a counter table compress well at any level). */
const DEFLATE_LEVEL = 1;
/** Bytes handed to zlib per write (each is compressed on the thread pool). */
const ZLIB_CHUNK_BYTES = 1 << 20;
/**
 * Bytes of each buffer a checkpoint's compressed output arrives in. Small enough for malloc to
 * serve from its heap, reusing memory already touched: tallyd's malloc maps every allocation of
 * 256 KiB or more on its own (src/util/malloc-tunables.ts), and a fresh mapping per chunk pays a
 * page fault per 4 KiB. (Inflating writes into one buffer of the image's size: inflate().)
 */
const ZLIB_OUTPUT_CHUNK_BYTES = 64 * 1024;

export interface CheckpointHeader {
  shardId: number;
  index: number;
  term: number;
  confState: ConfState;
  descriptor: ShardDescriptor;
}

/** The checkpoint's bytes as blocks (header first): the image encoded in slices (encodeShardImage), then compressed off the event loop. */
export async function encodeCheckpoint(
  header: CheckpointHeader,
  image: ShardImage,
  pause: () => Promise<void>,
  compress = true,
): Promise<Uint8Array[]> {
  const blocks = await encodeShardImage(image, pause, crc32);
  let imageBytes = 0;
  for (const block of blocks) imageBytes += block.length;
  // Uncompressed: the simulator's (zlib's thread pool runs in real time, outside its virtual clock).
  const compressed = compress ? await deflate(blocks) : blocks;
  let bodyCrc = 0;
  for (const chunk of compressed) {
    bodyCrc = crc32(chunk, bodyCrc);
    await pause();
  }
  return [encodeCheckpointHeader(header, compress ? COMPRESSION_DEFLATE : COMPRESSION_NONE, imageBytes, bodyCrc), ...compressed];
}

function encodeCheckpointHeader(header: CheckpointHeader, compression: number, imageBytes: number, bodyCrc: number): Uint8Array {
  const conf = encodeConfState(confStateKey(header.shardId), header.confState);
  const descriptor = encodeDescriptor(header.descriptor);
  const out = new Uint8Array(4 + 2 + 4 + 8 + 8 + 1 + 8 + 4 + 4 + conf.length + 4 + descriptor.length + 4);
  const view = new DataView(out.buffer);
  let at = 0;
  view.setUint32(at, CHECKPOINT_MAGIC);
  view.setUint16((at += 4), CHECKPOINT_FORMAT);
  view.setUint32((at += 2), header.shardId);
  view.setBigUint64((at += 4), BigInt(header.index));
  view.setBigUint64((at += 8), BigInt(header.term));
  view.setUint8((at += 8), compression);
  view.setBigUint64((at += 1), BigInt(imageBytes));
  view.setUint32((at += 8), bodyCrc);
  view.setUint32((at += 4), conf.length);
  out.set(conf, (at += 4));
  view.setUint32((at += conf.length), descriptor.length);
  out.set(descriptor, (at += 4));
  at += descriptor.length;
  view.setUint32(at, crc32(out.subarray(0, at)));
  return out;
}

/** Whether `data` starts like a checkpoint (rather than a wrapped snapshot()). */
export function isCheckpoint(data: Uint8Array): boolean {
  return data.length >= 4 && new DataView(data.buffer, data.byteOffset, 4).getUint32(0) === CHECKPOINT_MAGIC;
}

interface DecodedHeader {
  header: CheckpointHeader;
  compression: number;
  imageBytes: number;
  /** CRC-32 of `body`. */
  bodyCrc: number;
  /** The image as stored (compressed or not). */
  body: Uint8Array;
}

/** The header and the stored image bytes; throws CorruptionError on damage to the header (the image checks its own). */
export function decodeCheckpointHeader(data: Uint8Array, what: string): DecodedHeader {
  const fail = (problem: string): never => {
    throw new CorruptionError(`${what}: ${problem}`);
  };
  if (data.length < 50) fail(`${data.length} bytes is too short for a checkpoint`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint32(0) !== CHECKPOINT_MAGIC) fail("not a checkpoint (bad magic)");
  const format = view.getUint16(4);
  if (format !== CHECKPOINT_FORMAT) fail(`checkpoint format ${format}; this build reads format ${CHECKPOINT_FORMAT}`);
  const shardId = view.getUint32(6);
  const index = Number(view.getBigUint64(10));
  const term = Number(view.getBigUint64(18));
  const compression = view.getUint8(26);
  const imageBytes = Number(view.getBigUint64(27));
  const bodyCrc = view.getUint32(35);
  let at = 39;
  const confLength = view.getUint32(at);
  at += 4;
  if (at + confLength + 8 > data.length) fail("conf state runs past the data");
  const confBytes = data.subarray(at, at + confLength);
  at += confLength;
  const descriptorLength = view.getUint32(at);
  at += 4;
  if (at + descriptorLength + 4 > data.length) fail("descriptor runs past the data");
  const descriptorBytes = data.subarray(at, at + descriptorLength);
  at += descriptorLength;
  if (crc32(data.subarray(0, at)) !== view.getUint32(at)) fail("header checksum mismatch");
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term) || index < 1 || term < 1) fail(`bad index ${index} or term ${term}`);
  if (compression !== COMPRESSION_NONE && compression !== COMPRESSION_DEFLATE) fail(`unknown compression ${compression}`);
  if (!Number.isSafeInteger(imageBytes) || imageBytes > 0x7fff_ffff) fail(`image of ${imageBytes} bytes`);
  const confState = decodeConfState(confStateKey(shardId), confBytes);
  const descriptor = decodeDescriptor(descriptorBytes, what);
  return { header: { shardId, index, term, confState, descriptor }, compression, imageBytes, bodyCrc, body: data.subarray(at + 4) };
}

/** A shard's state decoded from its snapshot data (either format). */
export interface DecodedShardState {
  descriptor: ShardDescriptor;
  machine: CounterStateMachine;
  /** Set when the data was a checkpoint. */
  header: CheckpointHeader | undefined;
}

/** Decodes a checkpoint: inflated off the event loop, the machine built in slices (no step holds the event loop long). */
export async function decodeCheckpoint(
  data: Uint8Array,
  options: ShardOptions,
  pause: () => Promise<void>,
  what: string,
): Promise<DecodedShardState> {
  const decoded = decodeCheckpointHeader(data, what);
  let crc = 0;
  for (let at = 0; at < decoded.body.length; at += ZLIB_CHUNK_BYTES) {
    crc = crc32(decoded.body.subarray(at, Math.min(decoded.body.length, at + ZLIB_CHUNK_BYTES)), crc);
    await pause();
  }
  if (crc !== decoded.bodyCrc) throw new CorruptionError(`${what}: image checksum mismatch`);
  const image = decoded.compression === COMPRESSION_NONE ? decoded.body : await inflate(decoded.body, decoded.imageBytes, what);
  return checked(decoded, await CounterStateMachine.fromImageAsync(checkedLength(image, decoded, what), options, pause, crc32), what);
}

/** Decodes shard snapshot data of either format, synchronously (a checkpoint is decoded ahead of its install: this is the fallback). */
export function decodeShardSnapshotData(data: Uint8Array, options: ShardOptions, what: string): DecodedShardState {
  if (isCheckpoint(data)) {
    const decoded = decodeCheckpointHeader(data, what);
    if (crc32(decoded.body) !== decoded.bodyCrc) throw new CorruptionError(`${what}: image checksum mismatch`);
    let image = decoded.body;
    if (decoded.compression === COMPRESSION_DEFLATE) {
      try {
        image = inflateRawSync(decoded.body, { maxOutputLength: Math.max(1, decoded.imageBytes) });
      } catch (error) {
        throw new CorruptionError(`${what}: the image does not inflate: ${(error as Error).message}`);
      }
    }
    return checked(decoded, CounterStateMachine.fromImage(checkedLength(image, decoded, what), options, crc32), what);
  }
  const unwrapped = unwrapShardSnapshot(data);
  return { descriptor: unwrapped.descriptor, machine: CounterStateMachine.restore(unwrapped.machine, options), header: undefined };
}

function checkedLength(image: Uint8Array, decoded: DecodedHeader, what: string): Uint8Array {
  if (image.length !== decoded.imageBytes)
    throw new CorruptionError(`${what}: image of ${image.length} bytes, header says ${decoded.imageBytes}`);
  return image;
}

function checked(decoded: DecodedHeader, machine: CounterStateMachine, what: string): DecodedShardState {
  if (machine.appliedIndex !== decoded.header.index)
    throw new CorruptionError(`${what}: image at index ${machine.appliedIndex}, header says ${decoded.header.index}`);
  return { descriptor: decoded.header.descriptor, machine, header: decoded.header };
}

/** Raw DEFLATE of the concatenated blocks, on the thread pool; the output in chunks. */
function deflate(blocks: readonly Uint8Array[]): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const stream = createDeflateRaw({ level: DEFLATE_LEVEL, strategy: constants.Z_DEFAULT_STRATEGY, chunkSize: ZLIB_OUTPUT_CHUNK_BYTES });
    const out: Uint8Array[] = [];
    stream.on("data", (chunk: Buffer) => out.push(chunk));
    stream.on("error", reject);
    stream.on("end", () => resolve(out));
    const writeAll = async (): Promise<void> => {
      for (const block of blocks) {
        for (let at = 0; at < block.length; at += ZLIB_CHUNK_BYTES) {
          const slice = block.subarray(at, Math.min(block.length, at + ZLIB_CHUNK_BYTES));
          if (!stream.write(slice)) await new Promise<void>((drained) => stream.once("drain", drained));
        }
      }
      stream.end();
    };
    writeAll().catch(reject);
  });
}

/**
 * Inflates `body` (raw DEFLATE) on the thread pool into exactly `length` bytes; CorruptionError
 * otherwise. zlib writes into one output buffer of length + 1 bytes (never full, so the stream
 * allocates no second one) and hands out views of it in order: the image is that buffer, written
 * once, with no copy and no garbage per chunk. (A restart at 10 M counters inflates ~600 MB a
 * node: in 64 KiB chunks that was ~9,000 callbacks on the event loop and, counted as external
 * memory, a full collection every 64 MB.) Chunks that are not such views are copied.
 */
function inflate(body: Uint8Array, length: number, what: string): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const stream = createInflateRaw({ chunkSize: length + 1 });
    const chunks: Uint8Array[] = [];
    let filled = 0;
    let failed = false;
    const fail = (problem: string): void => {
      if (failed) return;
      failed = true;
      stream.destroy();
      reject(new CorruptionError(`${what}: ${problem}`));
    };
    stream.on("data", (chunk: Buffer) => {
      if (filled + chunk.length > length) return fail(`the image inflates past its ${length} bytes`);
      chunks.push(chunk);
      filled += chunk.length;
    });
    stream.on("error", (error: Error) => fail(`the image does not inflate: ${error.message}`));
    stream.on("end", () =>
      filled === length ? resolve(joined(chunks, length)) : fail(`the image inflates to ${filled} bytes, header says ${length}`),
    );
    for (let at = 0; at < body.length; at += ZLIB_CHUNK_BYTES)
      stream.write(body.subarray(at, Math.min(body.length, at + ZLIB_CHUNK_BYTES)));
    stream.end();
  });
}

/** `chunks` (`length` bytes in all) as one array: a view when they lie in order in one buffer, else a copy. */
export function joined(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const first = chunks[0];
  if (first === undefined) return new Uint8Array(0);
  let end = first.byteOffset;
  for (const chunk of chunks) {
    if (chunk.buffer !== first.buffer || chunk.byteOffset !== end) return Buffer.concat(chunks, length);
    end += chunk.length;
  }
  return new Uint8Array(first.buffer, first.byteOffset, length);
}
