/**
 * The client's lifecycle and admission: open or closed, the bound on operations in progress
 * (maxInflightOps), each call's deadline, and the background loops close() waits for.
 *
 * Invariant: inflightOps counts the callers admitted and not yet settled; it never goes negative.
 */
import { monotonicMs } from "../util/clock.js";
import { InvalidArgumentError, OverloadedError } from "../util/errors.js";
import type { Cancellation } from "./cancellation.js";
import { ClientClosedError } from "./errors.js";
import type { ResolvedOptions } from "./options.js";
import type { CallOptions } from "./types.js";

export class Lifecycle {
  closed = false;
  inflightOps = 0;
  /** Mutation loops, keep-alives and background route refreshes: close() waits for them. */
  readonly loops = new Set<Promise<void>>();
  /** Reads and watches in progress: close() cancels them. */
  readonly activeReads = new Set<Cancellation>();

  constructor(private readonly options: ResolvedOptions) {}

  checkOpen(): void {
    if (this.closed) throw new ClientClosedError();
  }

  deadlineFor(options: CallOptions): number {
    const deadlineMs = options.deadlineMs ?? this.options.deadlineMs;
    if (!(typeof deadlineMs === "number" && deadlineMs > 0))
      throw new InvalidArgumentError(`deadlineMs must be positive, got ${String(deadlineMs)}`);
    return monotonicMs() + deadlineMs;
  }

  admit(count: number, signal: AbortSignal | undefined): void {
    this.checkOpen();
    if (signal?.aborted) throw signal.reason;
    if (this.inflightOps + count > this.options.maxInflightOps) {
      throw new OverloadedError(`client has ${this.inflightOps} operations in flight (maxInflightOps ${this.options.maxInflightOps})`);
    }
  }
}
