/**
 * A cancellation flag with listeners. The client creates one per operation on its hot path, where
 * AbortController/EventTarget cost several microseconds per listener; callers' AbortSignals are
 * bridged in once per call.
 */
export class Cancellation {
  private listeners: Set<() => void> | undefined;
  private cancelledFlag = false;

  get cancelled(): boolean {
    return this.cancelledFlag;
  }

  cancel(): void {
    if (this.cancelledFlag) return;
    this.cancelledFlag = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    listeners?.forEach((listener) => listener());
  }

  /** Runs `listener` on cancel (at once if already cancelled); returns the unsubscribe function. */
  onCancel(listener: () => void): () => void {
    if (this.cancelledFlag) {
      listener();
      return () => undefined;
    }
    this.listeners ??= new Set();
    this.listeners.add(listener);
    return () => {
      this.listeners?.delete(listener);
    };
  }
}

/**
 * Runs `abort` when `signal` aborts, or at once if it already has: a listener added after the
 * abort never fires, so an abort during an await before this call would otherwise be missed.
 * Returns how to stop following the signal.
 */
export function followAbort(signal: AbortSignal | undefined, abort: () => void): () => void {
  if (signal === undefined) return () => undefined;
  signal.addEventListener("abort", abort, { once: true });
  if (signal.aborted) abort();
  return () => signal.removeEventListener("abort", abort);
}
