/**
 * Ordered delivery through a lossy or jittery link: writes numbered parts to an echo behind `port`,
 * one segment each (no Nagle coalescing), `gapMs` apart, and waits for every byte to come back.
 * The caller compares `received` with `sent` (in order, nothing lost or doubled).
 */
import { createConnection, type Socket } from "node:net";
import { withDeadline } from "./cluster.js";

export async function echoParts(options: {
  port: number;
  parts: number;
  gapMs: number;
  deadlineMs: number;
  /** Called with the socket at once, so the caller's teardown destroys it even if the wait fails. */
  track: (socket: Socket) => void;
}): Promise<{ sent: string; received: string }> {
  const socket = createConnection({ host: "127.0.0.1", port: options.port });
  options.track(socket);
  socket.on("error", () => undefined);
  socket.setNoDelay(true);
  let received = "";
  socket.on("data", (chunk) => (received += chunk.toString()));
  const parts = Array.from({ length: options.parts }, (_, i) => `<${i}>`);
  for (const part of parts) {
    socket.write(part);
    await new Promise((r) => setTimeout(r, options.gapMs));
  }
  const sent = parts.join("");
  await withDeadline(
    (async () => {
      while (received.length < sent.length) await new Promise((r) => setTimeout(r, 10));
    })(),
    options.deadlineMs,
    "the echo of every part",
  );
  return { sent, received };
}
