/**
 * The simulation trace: every notable event as one line. All lines feed a running hash (two runs
 * of one seed must produce the same hash: the determinism test), and the last `tailLines` are kept
 * in a ring buffer to print when a checker fails. SIM_TRACE=1 streams every line instead.
 */
import { assert } from "../../src/util/assert.js";
import { StringHasher } from "./hash.js";

/** Lines kept in full for windowed reports; beyond this only the ring buffer keeps lines. */
const KEPT_LINES_MAX = 400_000;

export class Trace {
  private readonly ring: string[];
  private next = 0;
  private count = 0;
  private readonly hasher = new StringHasher();
  private readonly kept: string[] = [];
  private readonly keptTimesMs: number[] = [];

  constructor(
    private readonly tailLines: number,
    private readonly sink?: (line: string) => void,
  ) {
    assert(tailLines > 0, "trace tail must keep at least one line");
    this.ring = new Array<string>(tailLines);
  }

  record(timeMs: number, text: string): void {
    const line = `${timeMs.toFixed(3).padStart(10)} ${text}`;
    this.hasher.update(line);
    this.ring[this.next] = line;
    this.next = (this.next + 1) % this.tailLines;
    this.count++;
    if (this.kept.length < KEPT_LINES_MAX) {
      this.kept.push(line);
      this.keptTimesMs.push(timeMs);
    }
    if (this.sink !== undefined) this.sink(line);
  }

  /**
   * Lines recorded in [fromMs, toMs] that match `keep`, at most `maxLines` (the latest ones):
   * for a violation found at the end of a run, the events around the operation that failed.
   */
  window(fromMs: number, toMs: number, maxLines: number, keep: (line: string) => boolean): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.kept.length; i++) {
      const t = this.keptTimesMs[i]!;
      if (t < fromMs) continue;
      if (t > toMs) break;
      if (keep(this.kept[i]!)) out.push(this.kept[i]!);
    }
    return out.slice(-maxLines);
  }

  get lines(): number {
    return this.count;
  }

  hash(): string {
    return this.hasher.digest();
  }

  /** The last lines recorded, oldest first. */
  tail(): string[] {
    const kept = Math.min(this.count, this.tailLines);
    const out: string[] = [];
    for (let i = 0; i < kept; i++) out.push(this.ring[(this.next - kept + i + this.tailLines) % this.tailLines]!);
    return out;
  }
}
