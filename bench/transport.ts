/**
 * Peer transport throughput: two PeerTransports on 127.0.0.1 in this process, node 1 sending frames
 * of 64 small messages (an App with one entry, spread over 64 groups) to node 2 as fast as node 2
 * takes them. Both ends share this process's CPU, so the figure is a floor for two real nodes.
 *
 *   npx tsx bench/transport.ts [--seconds 3] [--batch 64] [--entry-bytes 32]
 */
import { parseArgs } from "node:util";
import { EntryType, type Message, MessageType } from "../src/raft/types.js";
import { PeerTransport } from "../src/transport/peer-transport.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    batch: { type: "string", default: "64" },
    "entry-bytes": { type: "string", default: "32" },
  },
});
const seconds = Number(values.seconds);
const batchSize = Number(values.batch);
const entryBytes = Number(values["entry-bytes"]);
/** Messages sent but not yet received; keeps the sender from only filling queues and dropping. */
const inflightMessagesMax = batchSize * 64;

let received = 0;
const receiver = new PeerTransport({
  nodeId: 2,
  listenAddress: "127.0.0.1:0",
  peers: new Map(),
  onMessages: (_from, batch) => {
    received += batch.length;
  },
  onSnapshot: async () => undefined,
});
await receiver.start();
const sender = new PeerTransport({
  nodeId: 1,
  listenAddress: "127.0.0.1:0",
  peers: new Map([[2, receiver.boundAddress]]),
  onMessages: () => undefined,
  onSnapshot: async () => undefined,
});
await sender.start();

const deadlineToConnect = Date.now() + 10_000;
while (!sender.isConnected(2)) {
  if (Date.now() > deadlineToConnect) throw new Error("sender did not connect within 10 s");
  await new Promise((resolve) => setTimeout(resolve, 10));
}

const data = new Uint8Array(entryBytes).fill(1);
const message = (index: number): Message => ({
  type: MessageType.App,
  to: 2,
  from: 1,
  term: 5,
  logTerm: 5,
  index,
  entries: [{ term: 5, index: index + 1, type: EntryType.Normal, data }],
  commit: index,
  reject: false,
  rejectHint: 0,
});

let sent = 0;
const cpuStart = process.cpuUsage();
const start = performance.now();
const deadline = start + seconds * 1000;
while (performance.now() < deadline) {
  while (sent - received - sender.stats.dropped < inflightMessagesMax) {
    for (let i = 0; i < batchSize; i++) sender.send(2, i, message(sent + i));
    sent += batchSize;
    sender.flush();
  }
  await new Promise((resolve) => setImmediate(resolve));
}
const elapsed = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuStart);
// CPU seconds of this process (both ends): steadier than wall time on a shared, loaded box.
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const { framesSent, dropped } = sender.stats;
console.log(
  `peer transport, frames of ${batchSize} App messages (${entryBytes}-byte entry each), ${seconds}s: ` +
    `${(received / elapsed).toFixed(0)} messages/s received, ${(framesSent / elapsed).toFixed(0)} frames/s sent, dropped ${dropped}; ` +
    `${(received / cpuSeconds).toFixed(0)} messages per CPU-second (${cpuSeconds.toFixed(2)} CPU-s for both ends)`,
);
await sender.close();
await receiver.close();
