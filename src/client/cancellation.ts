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
