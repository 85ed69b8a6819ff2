/**
 * The simulation trace: every notable event as one line. All lines feed a running hash (two runs
 * of one seed must produce the same hash: the determinism test), and the last `tailLines` are kept
 * in a ring buffer to print when a checker fails. SIM_TRACE=1 streams every line instead.
 */
import { assert } from "../../src/util/assert.js";
import { StringHasher } from "./hash.js";

export class Trace {
  private readonly ring: string[];
  private next = 0;
  private count = 0;
  private readonly hasher = new StringHasher();

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
    if (this.sink !== undefined) this.sink(line);
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
