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
  /** Called once the connection is up, before the first part is written (e.g. to start dropping packets). */
  connected?: () => void;
}): Promise<{ sent: string; received: string }> {
  const socket = createConnection({ host: "127.0.0.1", port: options.port });
  options.track(socket);
  socket.on("error", () => undefined);
  socket.setNoDelay(true);
  if (options.connected !== undefined) {
    await withDeadline(new Promise((resolve) => socket.once("connect", resolve)), options.deadlineMs, "the connection");
    options.connected();
  }
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
