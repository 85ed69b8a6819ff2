/**
 * The simulator's event queue: a binary min-heap keyed by (virtual time, sequence number). The
 * sequence number is the order of scheduling, so two events at the same virtual time always run
 * in the same order and one seed replays one run exactly.
 */
import { assert } from "../../src/util/assert.js";

export interface ScheduledEvent {
  timeMs: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private readonly heap: ScheduledEvent[] = [];
  private nextSeq = 0;

  constructor(private readonly capacity: number) {
    assert(capacity > 0, "event queue capacity must be positive");
  }

  get size(): number {
    return this.heap.length;
  }

  push(timeMs: number, run: () => void): void {
    assert(Number.isFinite(timeMs), "event time must be finite");
    // Every queue has a bound: a runaway simulation (a message storm) fails loudly instead of
    // eating the machine's memory.
    assert(this.heap.length < this.capacity, `event queue is full (${this.capacity} events)`);
    const event: ScheduledEvent = { timeMs, seq: this.nextSeq++, run };
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = event;
  }

  pop(): ScheduledEvent | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
        if (!before(heap[child]!, last)) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }

  peekTimeMs(): number | undefined {
    return this.heap[0]?.timeMs;
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}
