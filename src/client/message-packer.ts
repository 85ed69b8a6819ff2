/**
 * Packs the Pipeline requests of one event-loop turn into PipelineBatch messages that stay well
 * inside a node's request bounds (request-bounds.ts: limits.maxBatchOps elements of a repeated
 * field, REQUEST_FIELDS_MAX fields, limits.maxRequestBytes), so that the bounds refuse only what
 * one request alone would exceed. Sizes are estimates from the request's fields (keys, ops,
 * packed bytes), not an encoding: a message closes early, never late.
 */
import type { PipelineRequestInput } from "../api/proto.js";

/** Requests in one message at most. */
export const PACKED_REQUESTS_MAX = 128;
/** Keys, ops and items of the requests of one message together at most (each a few fields on the wire). */
export const PACKED_ENTRIES_MAX = 4_000;
/** Estimated bytes of one message at most. */
export const PACKED_BYTES_MAX = 64 * 1024;
/** A request estimated above either goes in a message of its own. */
const ALONE_ENTRIES = 1_000;
const ALONE_BYTES = 16 * 1024;
/** Per request and per entry beyond its key bytes: ids, tags, lengths, deltas, fences. */
const REQUEST_OVERHEAD_BYTES = 64;
const ENTRY_OVERHEAD_BYTES = 24;

interface Size {
  entries: number;
  bytes: number;
}

export class MessagePacker {
  private readonly done: PipelineRequestInput[][] = [];
  private open: PipelineRequestInput[] = [];
  private entries = 0;
  private bytes = 0;

  /** Requests leave in the order they were added (a large one closes the message before it). */
  add(request: PipelineRequestInput): void {
    const size = sizeOf(request);
    if (size.entries > ALONE_ENTRIES || size.bytes > ALONE_BYTES) {
      this.close();
      this.done.push([request]);
      return;
    }
    if (
      this.open.length >= PACKED_REQUESTS_MAX ||
      this.entries + size.entries > PACKED_ENTRIES_MAX ||
      this.bytes + size.bytes > PACKED_BYTES_MAX
    )
      this.close();
    this.open.push(request);
    this.entries += size.entries;
    this.bytes += size.bytes;
  }

  /** Every message, in order. */
  messages(): PipelineRequestInput[][] {
    this.close();
    return this.done;
  }

  private close(): void {
    if (this.open.length > 0) this.done.push(this.open);
    this.open = [];
    this.entries = 0;
    this.bytes = 0;
  }
}

/** Length of a key as the encoder takes it (bytes or a string). */
function keyBytes(key: unknown): number {
  if (key instanceof Uint8Array) return key.length;
  if (typeof key === "string") return Buffer.byteLength(key);
  return 0;
}

function keysSize(keys: unknown): Size {
  if (!Array.isArray(keys)) return { entries: 0, bytes: 0 };
  let bytes = 0;
  for (const key of keys) bytes += keyBytes(key) + ENTRY_OVERHEAD_BYTES;
  return { entries: keys.length, bytes };
}

/** The estimated entries and bytes of one request, from its operation's fields. */
export function sizeOf(request: PipelineRequestInput): Size {
  let entries = 1;
  let bytes = REQUEST_OVERHEAD_BYTES;
  const op = request as Record<string, unknown>;
  for (const name in op) {
    const fields = op[name];
    if (name === "id" || fields === null || typeof fields !== "object") continue;
    const message = fields as Record<string, unknown>;
    bytes += keyBytes(message.key) + keyBytes(message.prefix);
    const keys = keysSize(message.keys);
    entries += keys.entries;
    bytes += keys.bytes;
    if (message.packedAdds instanceof Uint8Array) bytes += message.packedAdds.length;
    if (Array.isArray(message.ops)) {
      entries += message.ops.length;
      for (const batchOp of message.ops as Array<Record<string, unknown>>) {
        bytes += ENTRY_OVERHEAD_BYTES;
        for (const member in batchOp) {
          const inner = batchOp[member] as Record<string, unknown> | null;
          if (inner === null || typeof inner !== "object") continue;
          bytes += keyBytes(inner.key);
          const items = keysSize(inner.items);
          entries += items.entries;
          bytes += items.bytes;
        }
      }
    }
  }
  return { entries, bytes };
}
