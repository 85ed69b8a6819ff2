/**
 * A deterministic expiry index: key -> expiresAtMs, answering "which keys are due at nowMs" in one
 * order every replica agrees on: (expiresAtMs ascending, key bytes ascending).
 *
 * The state machine sets or clears a key's expiry when a command says so, and on an entry whose
 * leader-stamped time is nowMs it asks `expired(nowMs, limit)` for at most `limit` due keys and
 * deletes them (then clears them here). `expired` only reads, so a bounded number of deletions per
 * entry keeps apply time bounded however many keys fall due at once; the rest come next entry.
 *
 * Structure: an indexed binary min-heap on (expiresAtMs, key) plus a Map from key to heap node,
 * so set/clear are O(log n) and expired(nowMs, limit) is O(limit log limit) (a best-first walk of
 * the heap from the root that never visits more than 2 * limit + 1 nodes). The heap layout depends
 * on the history of operations, but nothing observable does: `expired` returns the global order
 * and `encode` writes the entries sorted, which is also a valid heap, so decode needs no sifting.
 *
 * Bounds: at most maxKeys entries (default COUNTERS_MAX, the shard's own counter bound), keys of
 * 1..KEY_BYTES_MAX bytes, each entry ~100 bytes of heap objects plus twice the key length. limit
 * is at most EXPIRED_LIMIT_MAX. Encoded: per entry, a varint time delta + varint length + key.
 */
import { InvalidArgumentError, OutOfRangeError } from "../../util/errors.js";
import { assert } from "../../util/assert.js";
import { COUNTERS_MAX } from "../counter-table.js";
import {
  KIND_MAGIC,
  beginEnvelope,
  binaryString,
  openEnvelope,
  readUvarint,
  requireBytes,
  requireInteger,
  sealEnvelope,
  writeUvarint,
} from "../../kinds/codec.js";

export const KEY_BYTES_MAX = 256;
export const EXPIRED_LIMIT_MAX = 100_000;
const FORMAT_VERSION = 1;

interface Node {
  readonly key: Uint8Array;
  /** binaryString(key): compares like the bytes. */
  readonly name: string;
  expiresAtMs: number;
  position: number;
}

function before(a: Node, b: Node): boolean {
  return a.expiresAtMs !== b.expiresAtMs ? a.expiresAtMs < b.expiresAtMs : a.name < b.name;
}

export interface ExpiringKey {
  readonly key: Uint8Array;
  readonly expiresAtMs: number;
}

export class ExpiryIndex {
  private readonly heap: Node[] = [];
  private readonly byName = new Map<string, Node>();
  readonly maxKeys: number;

  constructor(maxKeys: number = COUNTERS_MAX) {
    this.maxKeys = requireInteger(maxKeys, "maxKeys", 1, COUNTERS_MAX);
  }

  get size(): number {
    return this.heap.length;
  }

  /** Sets (or moves) the key's expiry. */
  set(key: Uint8Array, expiresAtMs: number): void {
    const name = binaryString(checkKey(key));
    requireInteger(expiresAtMs, "expiresAtMs", 0, Number.MAX_SAFE_INTEGER);
    const existing = this.byName.get(name);
    if (existing !== undefined) {
      existing.expiresAtMs = expiresAtMs;
      this.siftUp(existing.position);
      this.siftDown(existing.position);
      return;
    }
    if (this.heap.length >= this.maxKeys) throw new OutOfRangeError(`expiry index is full (${this.maxKeys} keys)`);
    const node: Node = { key: key.slice(), name, expiresAtMs, position: this.heap.length };
    this.heap.push(node);
    this.byName.set(name, node);
    this.siftUp(node.position);
  }

  /** Removes the key's expiry; returns whether it had one. */
  clear(key: Uint8Array): boolean {
    const name = binaryString(checkKey(key));
    const node = this.byName.get(name);
    if (node === undefined) return false;
    this.byName.delete(name);
    const last = this.heap.pop()!;
    if (last !== node) {
      this.heap[node.position] = last;
      last.position = node.position;
      this.siftUp(last.position);
      this.siftDown(last.position);
    }
    return true;
  }

  expiresAt(key: Uint8Array): number | undefined {
    return this.byName.get(binaryString(checkKey(key)))?.expiresAtMs;
  }

  /** At most `limit` keys with expiresAtMs <= nowMs, in (expiresAtMs, key) order. Changes nothing. */
  expired(nowMs: number, limit: number): ExpiringKey[] {
    requireInteger(nowMs, "nowMs", 0, Number.MAX_SAFE_INTEGER);
    requireInteger(limit, "limit", 1, EXPIRED_LIMIT_MAX);
    const out: ExpiringKey[] = [];
    // Best-first over the heap: the frontier holds nodes whose parents were taken.
    const frontier: Node[] = [];
    const pushFrontier = (position: number): void => {
      const node = this.heap[position];
      if (node === undefined || node.expiresAtMs > nowMs) return;
      siftUpIn(frontier, frontier.push(node) - 1, false);
    };
    pushFrontier(0);
    while (out.length < limit && frontier.length > 0) {
      const best = frontier[0]!;
      const last = frontier.pop()!;
      if (frontier.length > 0) {
        frontier[0] = last;
        siftDownIn(frontier, 0, false);
      }
      out.push({ key: best.key.slice(), expiresAtMs: best.expiresAtMs });
      pushFrontier(2 * best.position + 1);
      pushFrontier(2 * best.position + 2);
    }
    return out;
  }

  private siftUp(position: number): void {
    siftUpIn(this.heap, position, true);
  }

  private siftDown(position: number): void {
    siftDownIn(this.heap, position, true);
  }

  encode(): Uint8Array {
    const sorted = this.heap.slice().sort((a, b) => (before(a, b) ? -1 : 1));
    const writer = beginEnvelope(KIND_MAGIC.expiry, FORMAT_VERSION, 16 + sorted.length * 16);
    writeUvarint(writer, sorted.length);
    let previousMs = 0;
    for (const node of sorted) {
      writeUvarint(writer, node.expiresAtMs - previousMs);
      writeUvarint(writer, node.key.length);
      writer.raw(node.key);
      previousMs = node.expiresAtMs;
    }
    return sealEnvelope(writer);
  }

  static decode(bytes: Uint8Array, maxKeys: number = COUNTERS_MAX): ExpiryIndex {
    const reader = openEnvelope(bytes, KIND_MAGIC.expiry, FORMAT_VERSION, "expiry index");
    const index = new ExpiryIndex(maxKeys);
    const count = readUvarint(reader);
    if (count > index.maxKeys) reader.fail(`${count} keys exceed maxKeys ${index.maxKeys}`);
    let previous: Node | undefined;
    for (let i = 0; i < count; i++) {
      const expiresAtMs = (previous?.expiresAtMs ?? 0) + readUvarint(reader);
      if (!Number.isSafeInteger(expiresAtMs)) reader.fail("expiry time above 2^53");
      const length = readUvarint(reader);
      if (length < 1 || length > KEY_BYTES_MAX) reader.fail(`key length ${length} outside 1..${KEY_BYTES_MAX}`);
      const key = reader.raw(length);
      const node: Node = { key, name: binaryString(key), expiresAtMs, position: i };
      // Strictly sorted input is a valid heap; it is also the only encoding of this state.
      if (previous !== undefined && !before(previous, node)) reader.fail(`entry ${i} is not after entry ${i - 1}`);
      if (index.byName.has(node.name)) reader.fail(`key at entry ${i} appears twice`);
      index.heap.push(node);
      index.byName.set(node.name, node);
      previous = node;
    }
    reader.expectEnd(4);
    assert(index.heap.length === index.byName.size, "one heap node per key");
    return index;
  }
}

function checkKey(key: Uint8Array): Uint8Array {
  requireBytes(key, "key");
  if (key.length < 1 || key.length > KEY_BYTES_MAX)
    throw new InvalidArgumentError(`key must be 1..${KEY_BYTES_MAX} bytes, got ${key.length}`);
  return key;
}

// Heap moves over Node arrays. `track` keeps node.position in step (the index's own heap); the
// temporary frontier in expired() holds the same nodes and must not touch their positions.
function swapIn(heap: Node[], i: number, j: number, track: boolean): void {
  const a = heap[i]!;
  const b = heap[j]!;
  heap[i] = b;
  heap[j] = a;
  if (track) {
    a.position = j;
    b.position = i;
  }
}

function siftUpIn(heap: Node[], position: number, track: boolean): void {
  let i = position;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(heap[i]!, heap[parent]!)) return;
    swapIn(heap, i, parent, track);
    i = parent;
  }
}

function siftDownIn(heap: Node[], position: number, track: boolean): void {
  let i = position;
  for (;;) {
    const left = 2 * i + 1;
    let top = i;
    if (left < heap.length && before(heap[left]!, heap[top]!)) top = left;
    if (left + 1 < heap.length && before(heap[left + 1]!, heap[top]!)) top = left + 1;
    if (top === i) return;
    swapIn(heap, i, top, track);
    i = top;
  }
}
