/**
 * Wire encoding of Raft traffic between nodes. A frame carries the messages of many groups for
 * one ordered node pair (TiKV's BatchRaftMessage):
 *
 *   payload = msgpack [FRAME_FORMAT, [[groupId, message], ...]]
 *   message = [type, to, from, term, logTerm, index, entries, commit, reject, rejectHint, snapshot, context]
 *   entry   = [term, index, type, data(bin)]
 *   snapshot = [index, term, [voters, learners, votersOutgoing, learnersNext, autoLeave], data(bin)] or nil
 *
 * Positional arrays keep a heartbeat around 20 bytes. The RaftFrame carries a CRC32C of the payload;
 * decodeFrame verifies it and then validates every field, so garbage from the network (a truncated
 * frame, a buggy or foreign peer) becomes a FrameDecodeError -- never a crash and never a Message
 * with a field of the wrong type reaching the Raft core.
 */
import { Packr } from "msgpackr";
import type { ConfState, Entry, Message, Snapshot } from "../raft/types.js";
import { EntryType, MessageType } from "../raft/types.js";
import { isLocalMessage } from "../raft/util.js";
import { CorruptionError } from "../util/errors.js";
import { crc32c } from "../storage/crc32c.js";

export const FRAME_FORMAT = 1;
const SNAPSHOT_HEADER_FORMAT = 1;

const MESSAGE_TYPE_MAX = MessageType.CheckQuorum;

// copyBuffers: entry data outlives the frame (it sits in the log), so it must not pin the whole
// received frame in memory.
const packr = new Packr({ useRecords: false, moreTypes: false, copyBuffers: true });

export class FrameDecodeError extends CorruptionError {
  override name = "FrameDecodeError";
}

export interface EncodedFrame {
  payload: Uint8Array;
  /** CRC32C of payload. */
  crc32c: number;
}

export type GroupMessage = [groupId: number, message: Message];

// ---- encoding ----

function confStateFields(confState: ConfState): unknown[] {
  return [confState.voters, confState.learners, confState.votersOutgoing, confState.learnersNext, confState.autoLeave];
}

function snapshotFields(snapshot: Snapshot | undefined, withData: boolean): unknown[] | null {
  if (snapshot === undefined) return null;
  const { metadata } = snapshot;
  return [metadata.index, metadata.term, confStateFields(metadata.confState), withData ? snapshot.data : new Uint8Array(0)];
}

function messageFields(message: Message, withSnapshotData: boolean): unknown[] {
  const entries = new Array<unknown>(message.entries.length);
  for (let i = 0; i < message.entries.length; i++) {
    const entry = message.entries[i]!;
    entries[i] = [entry.term, entry.index, entry.type, entry.data];
  }
  return [
    message.type,
    message.to,
    message.from,
    message.term,
    message.logTerm,
    message.index,
    entries,
    message.commit,
    message.reject,
    message.rejectHint,
    snapshotFields(message.snapshot, withSnapshotData),
    message.context ?? null,
  ];
}

export function encodeFrame(batch: ReadonlyArray<readonly [number, Message]>): EncodedFrame {
  const items = new Array<unknown>(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const [groupId, message] = batch[i]!;
    items[i] = [groupId, messageFields(message, true)];
  }
  const payload: Uint8Array = packr.pack([FRAME_FORMAT, items]);
  return { payload, crc32c: crc32c(payload) };
}

/**
 * A cheap upper-bound estimate of a message's encoded size, for cutting frames below maxFrameBytes
 * without encoding twice.
 */
export function estimateMessageBytes(message: Message): number {
  let bytes = 64 + (message.context?.length ?? 0);
  for (const entry of message.entries) bytes += 24 + entry.data.length;
  if (message.snapshot !== undefined)
    bytes += 64 + 9 * (message.snapshot.metadata.confState.voters.length + 4) + message.snapshot.data.length;
  return bytes;
}

/** The first chunk of a snapshot transfer: the Snap message without its data, and the data's length. */
export function encodeSnapshotHeader(message: Message, dataLength = message.snapshot?.data.length ?? 0): Uint8Array {
  if (message.snapshot === undefined) throw new TypeError("snapshot header of a message without a snapshot");
  return packr.pack([SNAPSHOT_HEADER_FORMAT, messageFields(message, false), dataLength]);
}

// ---- decoding ----

function fail(why: string): never {
  throw new FrameDecodeError(`bad peer frame: ${why}`);
}

function u53(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) fail(`${name} is not a non-negative integer`);
  return value;
}

function u32(value: unknown, name: string): number {
  const n = u53(value, name);
  if (n > 0xffff_ffff) fail(`${name} exceeds u32`);
  return n;
}

function bool(value: unknown, name: string): boolean {
  if (typeof value !== "boolean") fail(`${name} is not a boolean`);
  return value;
}

function bytes(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(`${name} is not bytes`);
  // Plain Uint8Array views (msgpackr returns Buffers) so consumers compare and store one type.
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function array(value: unknown, name: string, length?: number): unknown[] {
  if (!Array.isArray(value)) fail(`${name} is not an array`);
  if (length !== undefined && value.length !== length) fail(`${name} has ${value.length} fields, expected ${length}`);
  return value;
}

function idList(value: unknown, name: string): number[] {
  return array(value, name).map((id, i) => u53(id, `${name}[${i}]`));
}

function decodeConfState(value: unknown): ConfState {
  const fields = array(value, "confState", 5);
  return {
    voters: idList(fields[0], "voters"),
    learners: idList(fields[1], "learners"),
    votersOutgoing: idList(fields[2], "votersOutgoing"),
    learnersNext: idList(fields[3], "learnersNext"),
    autoLeave: bool(fields[4], "autoLeave"),
  };
}

function decodeEntry(value: unknown): Entry {
  const fields = array(value, "entry", 4);
  const type = u53(fields[2], "entry.type");
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) fail(`unknown entry type ${type}`);
  return { term: u53(fields[0], "entry.term"), index: u53(fields[1], "entry.index"), type, data: bytes(fields[3], "entry.data") };
}

function decodeMessage(value: unknown): Message {
  const fields = array(value, "message", 12);
  const type = u53(fields[0], "type");
  if (type > MESSAGE_TYPE_MAX) fail(`unknown message type ${type}`);
  // RawNode.step refuses these with an exception, which would stop the receiving node's driver
  // loop: they are refused here, at the edge, like any other malformed field (found by the fuzzer).
  if (isLocalMessage(type)) fail(`${MessageType[type]} is a local message type`);
  const entries = array(fields[6], "entries").map(decodeEntry);
  const message: Message = {
    type,
    to: u53(fields[1], "to"),
    from: u53(fields[2], "from"),
    term: u53(fields[3], "term"),
    logTerm: u53(fields[4], "logTerm"),
    index: u53(fields[5], "index"),
    entries,
    commit: u53(fields[7], "commit"),
    reject: bool(fields[8], "reject"),
    rejectHint: u53(fields[9], "rejectHint"),
  };
  if (message.term === 0 && type !== MessageType.ReadIndex) fail(`${MessageType[type]} without a term`);
  if (fields[10] !== null) {
    const snapshot = array(fields[10], "snapshot", 4);
    message.snapshot = {
      metadata: {
        index: u53(snapshot[0], "snapshot.index"),
        term: u53(snapshot[1], "snapshot.term"),
        confState: decodeConfState(snapshot[2]),
      },
      data: bytes(snapshot[3], "snapshot.data"),
    };
  }
  if (fields[11] !== null) message.context = bytes(fields[11], "context");
  return message;
}

function unpack(payload: Uint8Array): unknown {
  try {
    return packr.unpack(payload);
  } catch (error) {
    return fail(`undecodable payload (${(error as Error).message.slice(0, 80)})`);
  }
}

export function decodeFrame(frame: EncodedFrame): GroupMessage[] {
  const { payload } = frame;
  if (!(payload instanceof Uint8Array)) fail("payload is not bytes");
  if (payload.length === 0) fail("empty payload");
  const computed = crc32c(payload);
  if (computed !== frame.crc32c) fail(`checksum mismatch (frame says ${frame.crc32c}, payload has ${computed})`);
  const top = array(unpack(payload), "frame", 2);
  if (top[0] !== FRAME_FORMAT) fail(`unknown frame format ${String(top[0])}`);
  return array(top[1], "batch").map((item): GroupMessage => {
    const pair = array(item, "batch item", 2);
    return [u32(pair[0], "groupId"), decodeMessage(pair[1])];
  });
}

export function decodeSnapshotHeader(header: Uint8Array): { message: Message; dataBytes: number } {
  if (!(header instanceof Uint8Array) || header.length === 0) fail("snapshot header missing");
  const fields = array(unpack(header), "snapshot header", 3);
  if (fields[0] !== SNAPSHOT_HEADER_FORMAT) fail(`unknown snapshot header format ${String(fields[0])}`);
  const message = decodeMessage(fields[1]);
  if (message.type !== MessageType.Snap || message.snapshot === undefined) fail("snapshot header is not a Snap message with a snapshot");
  return { message, dataBytes: u53(fields[2], "dataBytes") };
}
