/** Shared by the peer-transport tests: a Raft message to send, and a short-poll wait. */
import { type Message, MessageType } from "../../src/raft/types.js";

/** A heartbeat from `from` to `to`, with `overrides`. */
export function message(from: number, to: number, overrides: Partial<Message> = {}): Message {
  return {
    type: MessageType.Heartbeat,
    to,
    from,
    term: 1,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...overrides,
  };
}

/** Polls `predicate` every 10 ms until it holds, or fails naming `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
