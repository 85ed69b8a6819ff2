/**
 * Child process for client-close.test.ts: uses every part of the client that holds handles
 * (channels, streams, keepalive timer, auto-batch timer, deadline timers), closes it, and then
 * must exit on its own. It never calls process.exit.
 */
import { TallyClient } from "../../src/client/index.js";

const [address, mode] = process.argv.slice(2);
if (address === undefined) throw new Error("usage: client-exit-child ADDRESS [inflight]");
const client = new TallyClient({ endpoints: [address], keepAliveIntervalMs: 50, deadlineMs: 60_000 });
const added = await client.add("exit-key", 1n);
await client.addBatch([
  { key: "exit-a", delta: 1n },
  { key: "exit-b", delta: 2n },
]);
await client.get("exit-key");
await client.getMany(["exit-a", "exit-b"], { consistency: "stale" });
await client.status();
await new Promise((resolve) => setTimeout(resolve, 150)); // let KeepAlives go out
let inflight: Promise<unknown> | undefined;
if (mode === "inflight") {
  // The server holds "exit-held" forever: close() must still let the process go.
  inflight = client.add("exit-held", 1n).then(
    () => "resolved",
    (error: unknown) => (error as Error).name,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
}
await client.close();
console.log(JSON.stringify({ value: String(added.value), inflight: inflight === undefined ? null : await inflight }));
