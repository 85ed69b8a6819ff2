/**
 * The records of a node's eventual buffer file (buffer-log.ts frames them; buffer-state.ts folds
 * them). Four kinds, each one framed record:
 *   adds     durable eventual adds: the time they became durable, the request id that carried
 *            them (if any: retries with it are deduplicated), and the adds in packed form
 *            (src/util/packed-adds.ts, the same bytes BatchRequest.packed_adds carries);
 *   flush    a flush about to be sent: shard, the flusher's session (client id, seq), an id local
 *            to this buffer, the oldest add time it carries, and its adds. Written and synced
 *            BEFORE the flush is sent, so a restart re-sends the same (client id, seq, adds);
 *   done     a flush answered: applied (requeue 0), or refused by the shard with nothing applied
 *            (requeue 1: its adds go back to pending, to be sent again alone);
 *   session  the flusher's session on a shard and the last seq it used there.
 * A flush record may name a marker (flush-marked, type 5): a counter on the same shard, only ever
 * written by this node's flushes to that shard (+1 in the same atomic batch), and its value
 * before this flush. After the session expired, a linearizable read of the marker says whether the
 * flush applied (value > before) or not (value = before): the shard's own state is the dedupe,
 * and it never expires (flusher.ts).
 * Invariant: folding the records in file order gives the buffer's state; sums commute, so a flush
 * record subtracts exactly the deltas it carries whatever adds landed around it.
 */
import { decodePackedAdds, encodePackedAdds, scanPackedAdds, type PackedAdd } from "../../util/packed-adds.js";
import { InvalidArgumentError } from "../../util/errors.js";

export type BufferRecord =
  | { type: "adds"; atMs: number; adds: PackedAdd[]; requestId?: string; packed?: Uint8Array }
  | { type: "flush"; flush: FlushRecord }
  | { type: "done"; flushId: number; requeue: boolean }
  | { type: "session"; shardId: number; clientId: number; lastSeq: number };

export interface FlushRecord {
  flushId: number;
  shardId: number;
  clientId: number;
  seq: number;
  /** Durable time of the oldest add it carries (staleness). */
  oldestMs: number;
  /** When it was cut: adds left pending beside it are no older than this. */
  cutMs: number;
  adds: PackedAdd[];
  /** The marker counter added to by this flush (+1, same batch), and its value before it. */
  marker?: FlushMarker;
  /** In memory only (never encoded): keyString of each add's key, computed once when applied. */
  ids?: string[];
}

export interface FlushMarker {
  key: Uint8Array;
  before: bigint;
}

const ADDS = 1;
const FLUSH = 2;
const DONE = 3;
const SESSION = 4;
const FLUSH_MARKED = 5;
const FLUSH_HEADER_BYTES = 45;

/** Decoding bounds: a record never holds more adds than this (a flush is cut at the batch limit). */
const DECODE_LIMITS = { maxOps: 1_000_000, maxKeyBytes: 0xffff };

/** An adds record's header (its packed adds follow it): what encodeRecord writes before them. */
export function addsRecordHeader(atMs: number, requestId: string | undefined): Uint8Array {
  const id = Buffer.from(requestId ?? "", "latin1");
  const out = new Uint8Array(10 + id.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, ADDS);
  view.setFloat64(1, atMs);
  view.setUint8(9, id.length);
  out.set(id, 10);
  return out;
}

/**
 * Folds one replayed record into `state`: an adds record straight from its packed bytes (no
 * object per add; keys are copied into the state's table), any other through decodeRecord.
 */
export function replayRecord(
  state: { apply(record: BufferRecord): void; applyAdds(packed: Uint8Array, atMs: number, requestId: string | undefined): void },
  bytes: Uint8Array,
): void {
  if (bytes.length < 10 || bytes[0] !== ADDS) {
    state.apply(decodeRecord(bytes));
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idEnd = 10 + view.getUint8(9);
  if (bytes.length < idEnd) throw new InvalidArgumentError(`eventual buffer record of ${bytes.length} bytes is too short`);
  const packed = bytes.subarray(idEnd);
  // The same checks as decodeRecord (a record passed its checksum, so this is a bug or disk rot).
  if (packed.length > 0) scanPackedAdds(packed, DECODE_LIMITS);
  const requestId = idEnd > 10 ? Buffer.from(bytes.subarray(10, idEnd)).toString("latin1") : undefined;
  state.applyAdds(packed, view.getFloat64(1), requestId);
}

export function encodeRecord(record: BufferRecord): Uint8Array {
  switch (record.type) {
    case "adds": {
      const id = Buffer.from(record.requestId ?? "", "latin1");
      // `packed`: the request's own packed bytes of `adds` (already validated), written as they are.
      return withHeader(10 + id.length, record.packed ?? encodePackedAdds(record.adds), (view) => {
        view.setUint8(0, ADDS);
        view.setFloat64(1, record.atMs);
        view.setUint8(9, id.length);
        new Uint8Array(view.buffer, 10, id.length).set(id);
      });
    }
    case "flush": {
      const { flush } = record;
      const marker = flush.marker;
      const markerBytes = marker === undefined ? 0 : 2 + marker.key.length + 8;
      return withHeader(FLUSH_HEADER_BYTES + markerBytes, encodePackedAdds(flush.adds), (view) => {
        view.setUint8(0, marker === undefined ? FLUSH : FLUSH_MARKED);
        if (marker !== undefined) {
          view.setUint16(FLUSH_HEADER_BYTES, marker.key.length);
          new Uint8Array(view.buffer, FLUSH_HEADER_BYTES + 2, marker.key.length).set(marker.key);
          view.setBigInt64(FLUSH_HEADER_BYTES + 2 + marker.key.length, marker.before);
        }
        view.setUint32(1, flush.shardId);
        view.setFloat64(5, flush.clientId);
        view.setFloat64(13, flush.seq);
        view.setFloat64(21, flush.flushId);
        view.setFloat64(29, flush.oldestMs);
        view.setFloat64(37, flush.cutMs);
      });
    }
    case "done":
      return withHeader(10, new Uint8Array(0), (view) => {
        view.setUint8(0, DONE);
        view.setFloat64(1, record.flushId);
        view.setUint8(9, record.requeue ? 1 : 0);
      });
    case "session":
      return withHeader(21, new Uint8Array(0), (view) => {
        view.setUint8(0, SESSION);
        view.setUint32(1, record.shardId);
        view.setFloat64(5, record.clientId);
        view.setFloat64(13, record.lastSeq);
      });
  }
}

/** Decodes one record's payload (its frame's checksum already verified). */
export function decodeRecord(bytes: Uint8Array): BufferRecord {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (length: number) => {
    if (bytes.length < length) throw new InvalidArgumentError(`eventual buffer record of ${bytes.length} bytes is too short`);
  };
  need(1);
  switch (view.getUint8(0)) {
    case ADDS: {
      need(10);
      const idEnd = 10 + view.getUint8(9);
      need(idEnd);
      const record: BufferRecord = { type: "adds", atMs: view.getFloat64(1), adds: plainAdds(bytes.subarray(idEnd)) };
      if (idEnd > 10) record.requestId = Buffer.from(bytes.subarray(10, idEnd)).toString("latin1");
      return record;
    }
    case FLUSH:
    case FLUSH_MARKED: {
      need(FLUSH_HEADER_BYTES);
      let addsAt = FLUSH_HEADER_BYTES;
      let marker: FlushMarker | undefined;
      if (view.getUint8(0) === FLUSH_MARKED) {
        need(FLUSH_HEADER_BYTES + 2);
        const keyEnd = FLUSH_HEADER_BYTES + 2 + view.getUint16(FLUSH_HEADER_BYTES);
        need(keyEnd + 8);
        marker = { key: Uint8Array.from(bytes.subarray(FLUSH_HEADER_BYTES + 2, keyEnd)), before: view.getBigInt64(keyEnd) };
        addsAt = keyEnd + 8;
      }
      const flush: FlushRecord = {
        shardId: view.getUint32(1),
        clientId: view.getFloat64(5),
        seq: view.getFloat64(13),
        flushId: view.getFloat64(21),
        oldestMs: view.getFloat64(29),
        cutMs: view.getFloat64(37),
        adds: plainAdds(bytes.subarray(addsAt)),
      };
      if (marker !== undefined) flush.marker = marker;
      return { type: "flush", flush };
    }
    case DONE:
      need(10);
      return { type: "done", flushId: view.getFloat64(1), requeue: view.getUint8(9) === 1 };
    case SESSION:
      need(21);
      return { type: "session", shardId: view.getUint32(1), clientId: view.getFloat64(5), lastSeq: view.getFloat64(13) };
    default:
      throw new InvalidArgumentError(`eventual buffer record of unknown type ${view.getUint8(0)}`);
  }
}

function withHeader(headerBytes: number, body: Uint8Array, fill: (view: DataView) => void): Uint8Array {
  const out = new Uint8Array(headerBytes + body.length);
  fill(new DataView(out.buffer, 0, headerBytes));
  out.set(body, headerBytes);
  return out;
}

/** Packed adds copied out of the file's buffer (keys must not pin the whole read buffer). */
function plainAdds(bytes: Uint8Array): PackedAdd[] {
  if (bytes.length === 0) return [];
  return decodePackedAdds(bytes, DECODE_LIMITS).map((add) => ({ key: Uint8Array.from(add.key), delta: add.delta }));
}
