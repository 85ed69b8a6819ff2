/**
 * The fault proxy on a local echo server: it forwards, it cuts one directed link (identified by
 * source) without touching others, it heals, and it delays chunks when shaped.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, withDeadline } from "../support/cluster.js";
import { echoParts } from "../support/echo-parts.js";
import { NodeProxy } from "../support/proxy.js";

const cleanups: Array<() => Promise<void> | void> = [];
const track = (socket: Socket): void => void cleanups.push(() => void socket.destroy());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function echoServer(): Promise<{ port: number }> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port };
}

/** Sends `text` and resolves with the echo, or "closed" if the proxy drops the connection. */
async function roundTrip(port: number, text: string): Promise<{ reply: string; elapsedMs: number }> {
  const socket = createConnection({ host: "127.0.0.1", port });
  cleanups.push(() => void socket.destroy());
  const started = Date.now();
  const reply = new Promise<string>((resolve) => {
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString();
      if (received.length >= text.length) resolve(received);
    });
    socket.on("error", () => resolve("closed"));
    socket.on("close", () => resolve(received.length >= text.length ? received : "closed"));
  });
  socket.write(text);
  const result = await withDeadline(reply, 5000, "no echo within 5 s");
  return { reply: result, elapsedMs: Date.now() - started };
}

async function startProxy(source: { id: number }): Promise<NodeProxy> {
  const { port: targetPort } = await echoServer();
  const proxy = new NodeProxy(9, "127.0.0.1", await freePort(), "127.0.0.1", targetPort, () => source.id);
  await proxy.start();
  cleanups.push(() => proxy.close());
  return proxy;
}

describe("NodeProxy", () => {
  it("forwards both ways", async () => {
    const proxy = await startProxy({ id: 1 });
    expect((await roundTrip(proxy.listenPort, "hello")).reply).toBe("hello");
    expect(proxy.bytesForwarded).toBe(10);
  });

  it("cuts one directed link, leaves the others, and heals", async () => {
    const source = { id: 1 };
    const proxy = await startProxy(source);
    proxy.cut(1);
    expect((await roundTrip(proxy.listenPort, "x")).reply).toBe("closed");
    source.id = 2;
    expect((await roundTrip(proxy.listenPort, "y")).reply).toBe("y");
    source.id = 1;
    proxy.heal(1);
    expect((await roundTrip(proxy.listenPort, "z")).reply).toBe("z");
    proxy.cut(0);
    source.id = 2;
    expect((await roundTrip(proxy.listenPort, "w")).reply).toBe("closed");
    expect(proxy.connectionsRefused).toBe(2);
  });

  it("destroys open connections on a cut", async () => {
    const proxy = await startProxy({ id: 3 });
    const socket = createConnection({ host: "127.0.0.1", port: proxy.listenPort });
    cleanups.push(() => void socket.destroy());
    const closed = new Promise((r) => socket.on("close", r));
    socket.on("error", () => undefined);
    await withDeadline(new Promise((r) => socket.once("connect", r)), 2000, "connect");
    await withDeadline(
      (async () => {
        while (proxy.openConnections === 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      2000,
      "proxy never saw the connection",
    );
    proxy.cut(3);
    await withDeadline(closed, 2000, "connection survived the cut");
    expect(proxy.openConnections).toBe(0);
  });

  it("delays chunks by the link latency", async () => {
    const proxy = await startProxy({ id: 1 });
    proxy.shape(1, { latencyMs: 150 });
    const { reply, elapsedMs } = await roundTrip(proxy.listenPort, "slow");
    expect(reply).toBe("slow");
    // One way through the proxy is delayed (the echo passes it twice: 2 x 150 ms).
    expect(elapsedMs).toBeGreaterThanOrEqual(290);
  });

  it("keeps every byte in order under jitter (regression: a timer per chunk reordered them)", async () => {
    const proxy = await startProxy({ id: 1 });
    proxy.shape(1, { latencyMs: 50, jitterMs: 100 });
    const { sent, received } = await echoParts({ port: proxy.listenPort, parts: 60, gapMs: 2, deadlineMs: 5000, track });
    expect(received).toBe(sent);
  });

  it("emulated loss stalls each direction for an RTO that doubles on consecutive losses", async () => {
    const proxy = await startProxy({ id: 1 });
    proxy.shape(1, { lossRate: 1, rtoMs: 100 });
    const socket = createConnection({ host: "127.0.0.1", port: proxy.listenPort });
    cleanups.push(() => void socket.destroy());
    let received = "";
    socket.on("data", (chunk) => (received += chunk.toString()));
    const echoOf = async (text: string): Promise<number> => {
      const started = Date.now();
      const want = received + text;
      socket.write(text);
      await withDeadline(
        (async () => {
          while (received !== want) await new Promise((r) => setTimeout(r, 5));
        })(),
        5000,
        `no echo of ${text}`,
      );
      return Date.now() - started;
    };
    // Every chunk is lost once: 100 ms each way, then 200 ms each way (the second loss in a row).
    expect(await echoOf("a")).toBeGreaterThanOrEqual(190);
    expect(await echoOf("b")).toBeGreaterThanOrEqual(390);
    expect(proxy.lossStalls).toBe(4);
  });

  it("emulated loss keeps every byte in order; a reset rate of 1 closes the connection", async () => {
    let state = 7;
    const seeded = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const { port: targetPort } = await echoServer();
    const proxy = new NodeProxy(9, "127.0.0.1", await freePort(), "127.0.0.1", targetPort, () => 1, seeded);
    await proxy.start();
    cleanups.push(() => proxy.close());
    proxy.shape(1, { lossRate: 0.3, rtoMs: 20, latencyMs: 2, jitterMs: 5 });
    const { sent, received } = await echoParts({ port: proxy.listenPort, parts: 40, gapMs: 3, deadlineMs: 10_000, track });
    expect(received).toBe(sent);
    expect(proxy.lossStalls).toBeGreaterThan(0);

    // Bad input: refused, the link keeps its shape.
    expect(() => proxy.shape(1, { lossRate: 2 })).toThrow(/lossRate must be in \[0, 1\]/);
    expect(() => proxy.shape(1, { rtoMs: -1 })).toThrow(/rtoMs must be >= 0/);
    proxy.shape(1, { resetRate: 1 });
    expect((await roundTrip(proxy.listenPort, "gone")).reply).toBe("closed");
    expect(proxy.resets).toBe(1);
  });
});
