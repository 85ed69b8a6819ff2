/**
 * A shard's descriptor: its epoch and slot range, replicated through the shard's own log (an
 * entry that changes the replica set bumps the epoch as it applies), persisted beside the applied
 * state ('M' group record) and carried inside the shard's snapshots, so a replica that catches up
 * by snapshot learns it too. Requests name the epoch they routed by; apply refuses stale ones.
 */
import { Packr } from "msgpackr";
import { SLOT_COUNT } from "../meta/slots.js";
import { CorruptionError } from "../util/errors.js";

export interface ShardDescriptor {
  epoch: number;
  /** Inclusive. */
  slotStart: number;
  /** Exclusive. */
  slotEnd: number;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
const SNAPSHOT_WRAP_MAGIC = 0x54444553; // "TDES"

export function encodeDescriptor(descriptor: ShardDescriptor): Uint8Array {
  return packr.pack([descriptor.epoch, descriptor.slotStart, descriptor.slotEnd]);
}

export function decodeDescriptor(bytes: Uint8Array, what: string): ShardDescriptor {
  let decoded: unknown;
  try {
    decoded = packr.unpack(bytes);
  } catch (error) {
    throw new CorruptionError(`${what}: descriptor does not decode: ${(error as Error).message}`);
  }
  if (!Array.isArray(decoded) || decoded.length !== 3 || !decoded.every((n) => Number.isSafeInteger(n))) {
    throw new CorruptionError(`${what}: descriptor has the wrong shape`);
  }
  const [epoch, slotStart, slotEnd] = decoded as number[];
  if (!(epoch! >= 1 && slotStart! >= 0 && slotStart! < slotEnd! && slotEnd! <= SLOT_COUNT)) {
    throw new CorruptionError(`${what}: descriptor [epoch ${epoch}, slots ${slotStart}-${slotEnd}] is out of range`);
  }
  return { epoch: epoch!, slotStart: slotStart!, slotEnd: slotEnd! };
}

/** Shard snapshot data: u32 magic | u32 descriptor length | descriptor | state machine snapshot. */
export function wrapShardSnapshot(descriptor: ShardDescriptor, machine: Uint8Array): Uint8Array {
  const header = encodeDescriptor(descriptor);
  const out = new Uint8Array(8 + header.length + machine.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, SNAPSHOT_WRAP_MAGIC);
  view.setUint32(4, header.length);
  out.set(header, 8);
  out.set(machine, 8 + header.length);
  return out;
}

export function unwrapShardSnapshot(data: Uint8Array): { descriptor: ShardDescriptor; machine: Uint8Array } {
  if (data.length < 8) throw new CorruptionError(`shard snapshot of ${data.length} bytes is too short`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint32(0) !== SNAPSHOT_WRAP_MAGIC) throw new CorruptionError("shard snapshot lacks its descriptor header");
  const length = view.getUint32(4);
  if (8 + length > data.length) throw new CorruptionError("shard snapshot descriptor runs past the data");
  return { descriptor: decodeDescriptor(data.subarray(8, 8 + length), "shard snapshot"), machine: data.subarray(8 + length) };
}

/**
 * A range split travels in the shard's own log as a normal entry the node intercepts before the
 * counter state machine sees it: one marker byte (0xFF, never the start of a counter entry, which
 * is a msgpack array) and then msgpack [splitSlot, newShardId, expectedEpoch].
 */
export const SPLIT_ENTRY_MARKER = 0xff;

export interface SplitEntry {
  splitSlot: number;
  newShardId: number;
  expectedEpoch: number;
}

export function encodeSplitEntry(split: SplitEntry): Uint8Array {
  const body = packr.pack([split.splitSlot, split.newShardId, split.expectedEpoch]);
  const out = new Uint8Array(1 + body.length);
  out[0] = SPLIT_ENTRY_MARKER;
  out.set(body, 1);
  return out;
}

export function decodeSplitEntry(data: Uint8Array): SplitEntry | undefined {
  if (data.length < 2 || data[0] !== SPLIT_ENTRY_MARKER) return undefined;
  let decoded: unknown;
  try {
    decoded = packr.unpack(data.subarray(1));
  } catch (error) {
    throw new CorruptionError(`split entry does not decode: ${(error as Error).message}`);
  }
  if (!Array.isArray(decoded) || decoded.length !== 3 || !decoded.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new CorruptionError("split entry has the wrong shape");
  }
  const [splitSlot, newShardId, expectedEpoch] = decoded as number[];
  return { splitSlot: splitSlot!, newShardId: newShardId!, expectedEpoch: expectedEpoch! };
}
