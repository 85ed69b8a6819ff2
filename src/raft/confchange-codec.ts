/**
 * ConfChange wire format (the data of an EntryType.ConfChange entry). Hand-rolled and compact; no
 * dependencies. Layout:
 *
 *   u8      version (1)
 *   u8      transition (ConfChangeTransition)
 *   u8      flags (bit 0: context present; other bits must be 0)
 *   varint  number of changes (<= MAX_CONF_CHANGES)
 *   per change: u8 type (ConfChangeType), varint nodeId (1 .. 2^53-1)
 *   if flags & 1: varint context length, then the context bytes
 *
 * varint: unsigned LEB128, at most 8 bytes (56 bits), canonical (no redundant trailing zero groups).
 * Decoding validates every field and the exact length, so a corrupt entry is never half-applied.
 */
import { InvalidArgumentError } from "../util/errors.js";
import { assert } from "../util/assert.js";
import { type ConfChange, ConfChangeTransition, ConfChangeType, type ConfChangeSingle } from "./types.js";

const VERSION = 1;
const FLAG_CONTEXT = 1;
/** Bound on the changes in one ConfChange: membership changes touch a handful of nodes. */
export const MAX_CONF_CHANGES = 1024;
/** Bound on the opaque context carried with a ConfChange. */
export const MAX_CONF_CHANGE_CONTEXT_BYTES = 1 << 20;

function varintBytes(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

function writeVarint(out: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80) {
    out[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  assert(cc.transition in ConfChangeTransition, `encodeConfChange: bad transition ${cc.transition}`);
  assert(cc.changes.length <= MAX_CONF_CHANGES, `encodeConfChange: more than ${MAX_CONF_CHANGES} changes`);
  const context = cc.context;
  assert(context === undefined || context.byteLength <= MAX_CONF_CHANGE_CONTEXT_BYTES, "encodeConfChange: context too large");
  let size = 3 + varintBytes(cc.changes.length);
  for (const c of cc.changes) {
    assert(c.type in ConfChangeType, `encodeConfChange: bad change type ${c.type}`);
    assert(Number.isSafeInteger(c.nodeId) && c.nodeId > 0, `encodeConfChange: bad node id ${c.nodeId}`);
    size += 1 + varintBytes(c.nodeId);
  }
  if (context !== undefined) size += varintBytes(context.byteLength) + context.byteLength;
  const out = new Uint8Array(size);
  out[0] = VERSION;
  out[1] = cc.transition;
  out[2] = context !== undefined ? FLAG_CONTEXT : 0;
  let pos = writeVarint(out, 3, cc.changes.length);
  for (const c of cc.changes) {
    out[pos++] = c.type;
    pos = writeVarint(out, pos, c.nodeId);
  }
  if (context !== undefined) {
    pos = writeVarint(out, pos, context.byteLength);
    out.set(context, pos);
    pos += context.byteLength;
  }
  assert(pos === size, "encodeConfChange: size mismatch");
  return out;
}

class Reader {
  pos = 0;
  constructor(readonly data: Uint8Array) {}

  u8(what: string): number {
    const b = this.data[this.pos];
    if (b === undefined) throw new InvalidArgumentError(`decodeConfChange: truncated at ${what}`);
    this.pos++;
    return b;
  }

  varint(what: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8(what);
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new InvalidArgumentError(`decodeConfChange: non-canonical varint at ${what}`);
        if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`decodeConfChange: ${what} too large`);
        return value;
      }
      scale *= 128;
    }
    throw new InvalidArgumentError(`decodeConfChange: varint too long at ${what}`);
  }
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const r = new Reader(data);
  const version = r.u8("version");
  if (version !== VERSION) throw new InvalidArgumentError(`decodeConfChange: unknown version ${version}`);
  const transition = r.u8("transition");
  if (!(transition in ConfChangeTransition)) {
    throw new InvalidArgumentError(`decodeConfChange: bad transition ${transition}`);
  }
  const flags = r.u8("flags");
  if ((flags & ~FLAG_CONTEXT) !== 0) throw new InvalidArgumentError(`decodeConfChange: bad flags ${flags}`);
  const count = r.varint("change count");
  if (count > MAX_CONF_CHANGES) throw new InvalidArgumentError(`decodeConfChange: ${count} changes is too many`);
  const changes: ConfChangeSingle[] = [];
  for (let i = 0; i < count; i++) {
    const type = r.u8("change type");
    if (!(type in ConfChangeType)) throw new InvalidArgumentError(`decodeConfChange: bad change type ${type}`);
    const nodeId = r.varint("node id");
    if (nodeId === 0) throw new InvalidArgumentError("decodeConfChange: node id 0");
    changes.push({ type: type as ConfChangeType, nodeId });
  }
  const cc: ConfChange = { transition: transition as ConfChangeTransition, changes };
  if ((flags & FLAG_CONTEXT) !== 0) {
    const length = r.varint("context length");
    if (length > MAX_CONF_CHANGE_CONTEXT_BYTES || r.pos + length > data.byteLength) {
      throw new InvalidArgumentError("decodeConfChange: bad context length");
    }
    cc.context = data.slice(r.pos, r.pos + length);
    r.pos += length;
  }
  if (r.pos !== data.byteLength) {
    throw new InvalidArgumentError(`decodeConfChange: ${data.byteLength - r.pos} trailing bytes`);
  }
  return cc;
}
