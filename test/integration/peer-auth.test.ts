/**
 * PeerTransport with a cluster secret (peerSecret), over real gRPC on 127.0.0.1: nodes with the
 * same secret exchange messages and snapshots; a node with another secret, a caller without the
 * handshake, a tampered, replayed or misattributed frame and a forged snapshot are refused with
 * UNAUTHENTICATED, and nothing of theirs reaches the node. Without TLS and without a secret the
 * transport warns at start-up that its port is open.
 */
import * as grpc from "@grpc/grpc-js";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { message, waitFor } from "../support/peer-messages.js";
import { type Message, MessageType } from "../../src/raft/types.js";
import { crc32c } from "../../src/storage/crc32c.js";
import { encodeFrame, encodeSnapshotHeader } from "../../src/transport/codec.js";
import { type FrameMac, PeerAuthenticator, snapshotChunkFields } from "../../src/transport/peer-auth.js";
import { peerService, type RaftFrameWire, type SnapshotAckWire, type SnapshotChunkWire } from "../../src/transport/peer-proto.js";
import { PeerTransport, type PeerTransportOptions } from "../../src/transport/peer-transport.js";
import { generateToken } from "../../src/util/auth-token.js";

const SECRET = generateToken();

interface Node {
  id: number;
  transport: PeerTransport;
  received: Array<{ from: number; groupId: number; message: Message }>;
  snapshots: Array<{ from: number; groupId: number; message: Message }>;
  snapshotResults: Array<{ to: number; groupId: number; ok: boolean }>;
}

const running: PeerTransport[] = [];
const rawClients: grpc.Client[] = [];

afterEach(async () => {
  for (const client of rawClients.splice(0)) client.close();
  await Promise.all(running.splice(0).map((t) => t.close()));
});

async function startNode(id: number, overrides: Partial<PeerTransportOptions> = {}): Promise<Node> {
  const node: Node = { id, transport: undefined as unknown as PeerTransport, received: [], snapshots: [], snapshotResults: [] };
  node.transport = new PeerTransport({
    nodeId: id,
    listenAddress: "127.0.0.1:0",
    peers: new Map(),
    onMessages: (from, batch) => {
      for (const [groupId, m] of batch) node.received.push({ from, groupId, message: m });
    },
    onSnapshot: async (from, groupId, m) => {
      node.snapshots.push({ from, groupId, message: m });
    },
    reconnectBackoffMinMs: 20,
    reconnectBackoffMaxMs: 200,
    peerSecret: SECRET,
    ...overrides,
  });
  node.transport.onSnapshotResult = (to, groupId, ok) => node.snapshotResults.push({ to, groupId, ok });
  running.push(node.transport);
  await node.transport.start();
  return node;
}

function connectAll(nodes: Node[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.setPeer(b.id, b.transport.boundAddress);
}

function rawClient(address: string): InstanceType<ReturnType<typeof peerService>["Client"]> {
  const client = new (peerService().Client)(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  rawClients.push(client);
  return client;
}

function snapshotMessage(from: number, to: number, data: Uint8Array): Message {
  return message(from, to, {
    type: MessageType.Snap,
    term: 3,
    snapshot: {
      metadata: { index: 40, term: 3, confState: { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } },
      data,
    },
  });
}

/**
 * A Raft stream to `address` speaking the protocol by hand: with `secret`, it runs the handshake
 * as node `dialer` (to node `listener`) and hands back the frame MACs; without, it sends no headers.
 */
async function rawRaftStream(address: string, options: { secret?: string; dialer: number; listener: number }) {
  const handshake =
    options.secret === undefined ? undefined : new PeerAuthenticator(options.secret).dial("raft", options.dialer, options.listener);
  const stream = rawClient(address).Raft(handshake?.metadata ?? new grpc.Metadata(), { deadline: Date.now() + 10_000 });
  stream.on("error", () => undefined);
  stream.on("data", () => undefined);
  const status = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
  let frameMac: FrameMac | undefined;
  if (handshake !== undefined) {
    const headers = await Promise.race([
      new Promise<grpc.Metadata>((resolve) => stream.on("metadata", resolve)),
      status.then(() => undefined),
    ]);
    if (headers === undefined) throw new Error("the stream ended before the listener answered");
    frameMac = handshake.finish(headers);
  }
  /** Ends after `ms` with "open" if the listener has not ended the stream. */
  const outcome = (ms: number) => Promise.race([status, new Promise<"open">((resolve) => setTimeout(() => resolve("open"), ms))]);
  return { stream, frameMac, status, outcome };
}

function frameOf(from: number, to: number, overrides: Partial<Message> = {}): RaftFrameWire {
  const frame = encodeFrame([[1, message(from, to, overrides)]]);
  return { fromNode: String(from), payload: frame.payload, crc32c: frame.crc32c };
}

describe("PeerTransport with a cluster secret", () => {
  it("nodes with the same secret exchange messages and snapshots", async () => {
    const nodes = [await startNode(1), await startNode(2), await startNode(3)];
    connectAll(nodes);
    for (let round = 0; round < 20; round++) {
      for (const from of nodes) {
        for (const to of nodes) if (from !== to) from.transport.send(to.id, round, message(from.id, to.id, { commit: round }));
        from.transport.flush();
      }
    }
    await waitFor(() => nodes.every((n) => n.received.length === 40), "every message");
    for (const node of nodes) {
      for (const from of nodes) {
        if (from === node) continue;
        expect(node.received.filter((r) => r.from === from.id).map((r) => r.message.commit)).toEqual(
          Array.from({ length: 20 }, (_, i) => i),
        );
      }
    }
    const data = new Uint8Array(600 * 1024).map((_, i) => (i * 31) & 0xff);
    nodes[0]!.transport.send(2, 9, snapshotMessage(1, 2, data));
    await waitFor(() => nodes[0]!.snapshotResults.length === 1, "snapshot result");
    expect(nodes[0]!.snapshotResults).toEqual([{ to: 2, groupId: 9, ok: true }]);
    expect(crc32c(nodes[1]!.snapshots[0]!.message.snapshot!.data)).toBe(crc32c(data));
    for (const node of nodes) {
      expect(node.transport.stats.unauthenticated).toBe(0);
      expect(node.transport.stats.framesRejected).toBe(0);
    }
  });

  it("nodes with different secrets never connect, and nothing either sends is delivered", async () => {
    const a = await startNode(1);
    const b = await startNode(2, { peerSecret: generateToken() });
    connectAll([a, b]);
    a.transport.send(2, 1, snapshotMessage(1, 2, new Uint8Array(1000)));
    for (let i = 0; i < 5; i++) {
      a.transport.send(2, 1, message(1, 2));
      b.transport.send(1, 1, message(2, 1));
      a.transport.flush();
      b.transport.flush();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitFor(
      () => a.snapshotResults.length === 1 && a.transport.stats.unauthenticated >= 2 && b.transport.stats.unauthenticated >= 1,
      "refusals on both sides",
    );
    expect(a.snapshotResults).toEqual([{ to: 2, groupId: 1, ok: false }]);
    expect(a.transport.isConnected(2)).toBe(false);
    expect(b.transport.isConnected(1)).toBe(false);
    expect(a.received).toEqual([]);
    expect(b.received).toEqual([]);
    expect(b.snapshots).toEqual([]);
  });

  it("refuses a caller without the handshake: an old or unconfigured node, or a forger", async () => {
    const b = await startNode(2, { peers: new Map([[1, "127.0.0.1:1"]]) });
    const { stream, outcome } = await rawRaftStream(b.transport.boundAddress, { dialer: 1, listener: 2 });
    stream.write(frameOf(1, 2, { type: MessageType.App, term: 27, commit: 5 }));
    const status = await outcome(3_000);
    expect(status).not.toBe("open");
    expect((status as grpc.StatusObject).code).toBe(grpc.status.UNAUTHENTICATED);

    // A transport without a secret dialing one with a secret: refused the same way.
    const plain = await startNode(1, { peerSecret: undefined });
    plain.transport.setPeer(2, b.transport.boundAddress);
    plain.transport.send(2, 1, message(1, 2));
    plain.transport.flush();
    await waitFor(() => b.transport.stats.unauthenticated >= 2, "the plain node refused");
    expect(b.received).toEqual([]);
  });

  it("refuses a caller that proves the secret as one node and sends frames in another's name", async () => {
    const b = await startNode(2, {
      peers: new Map([
        [1, "127.0.0.1:1"],
        [3, "127.0.0.1:1"],
      ]),
    });
    const { stream, frameMac, outcome } = await rawRaftStream(b.transport.boundAddress, { secret: SECRET, dialer: 1, listener: 2 });
    const spliced = frameOf(3, 2);
    stream.write({ ...spliced, mac: frameMac!.sign(spliced.payload) });
    const status = await outcome(3_000);
    expect((status as grpc.StatusObject).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(b.received).toEqual([]);

    // A handshake that claims a node id which is not a peer is refused before any frame.
    const stranger = rawClient(b.transport.boundAddress).Raft(new PeerAuthenticator(SECRET).dial("raft", 9, 2).metadata, {
      deadline: Date.now() + 10_000,
    });
    stranger.on("error", () => undefined);
    const strangerStatus = await new Promise<grpc.StatusObject>((resolve) => stranger.on("status", resolve));
    expect(strangerStatus.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(strangerStatus.details).toContain("node 9 is not a peer of node 2");
  });

  it("refuses a tampered frame and ends the call", async () => {
    const b = await startNode(2, { peers: new Map([[1, "127.0.0.1:1"]]) });
    const { stream, frameMac, outcome } = await rawRaftStream(b.transport.boundAddress, { secret: SECRET, dialer: 1, listener: 2 });
    const good = frameOf(1, 2, { commit: 1 });
    stream.write({ ...good, mac: frameMac!.sign(good.payload) });
    await waitFor(() => b.received.length === 1, "the authentic frame");
    const original = frameOf(1, 2, { commit: 2 });
    const mac = frameMac!.sign(original.payload);
    const altered = frameOf(1, 2, { commit: 200 });
    stream.write({ ...altered, mac });
    const status = await outcome(3_000);
    expect((status as grpc.StatusObject).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(b.received.map((r) => r.message.commit)).toEqual([1]);
    expect(b.transport.stats.framesRejected).toBe(1);
    expect(b.transport.stats.unauthenticated).toBe(1);
  });

  it("refuses a replayed frame, on the same call and on a new one", async () => {
    const b = await startNode(2, { peers: new Map([[1, "127.0.0.1:1"]]) });
    const first = await rawRaftStream(b.transport.boundAddress, { secret: SECRET, dialer: 1, listener: 2 });
    const frame = frameOf(1, 2, { type: MessageType.App, commit: 7 });
    const recorded = { ...frame, mac: first.frameMac!.sign(frame.payload) };
    first.stream.write(recorded);
    await waitFor(() => b.received.length === 1, "the authentic frame");
    first.stream.write(recorded);
    expect(((await first.outcome(3_000)) as grpc.StatusObject).code).toBe(grpc.status.UNAUTHENTICATED);

    // The attacker has no secret: it can only replay what it recorded, on a call of its own.
    const second = await rawRaftStream(b.transport.boundAddress, { dialer: 1, listener: 2 });
    second.stream.write(recorded);
    expect(((await second.outcome(3_000)) as grpc.StatusObject).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(b.received.length).toBe(1);
  });

  it("refuses a forged snapshot, and a chunk whose MAC does not match", async () => {
    const b = await startNode(2, { peers: new Map([[1, "127.0.0.1:1"]]) });
    const snap = snapshotMessage(1, 2, new Uint8Array(64).fill(7));
    const chunk = (mac?: Uint8Array): SnapshotChunkWire => ({
      fromNode: "1",
      groupId: 1,
      header: encodeSnapshotHeader(snap),
      data: snap.snapshot!.data,
      offset: 0,
      last: true,
      crc32c: crc32c(snap.snapshot!.data),
      ...(mac === undefined ? {} : { mac }),
    });
    const upload = (metadata: grpc.Metadata, chunks: (headers: grpc.Metadata | undefined) => SnapshotChunkWire[]) =>
      new Promise<{ error: grpc.ServiceError | null; ack?: SnapshotAckWire }>((resolve) => {
        const call = rawClient(b.transport.boundAddress).Snapshot(metadata, { deadline: Date.now() + 10_000 }, (error, ack) =>
          resolve(ack === undefined ? { error } : { error, ack }),
        );
        call.on("error", () => undefined);
        let wrote = false;
        const write = (headers: grpc.Metadata | undefined) => {
          if (wrote) return;
          wrote = true;
          for (const c of chunks(headers)) call.write(c);
          call.end();
        };
        call.on("metadata", (headers: grpc.Metadata) => write(headers));
        setTimeout(() => write(undefined), 200);
      });

    const forged = await upload(new grpc.Metadata(), () => [chunk()]);
    expect(forged.error?.code).toBe(grpc.status.UNAUTHENTICATED);

    const handshake = new PeerAuthenticator(SECRET).dial("snapshot", 1, 2);
    const tampered = await upload(handshake.metadata, (headers) => {
      const frames = handshake.finish(headers!);
      const c = chunk();
      const mac = frames.sign(snapshotChunkFields(c.groupId, c.offset, c.last, c.crc32c, c.header.length), c.header, c.data);
      return [{ ...c, data: new Uint8Array(64).fill(8), crc32c: crc32c(new Uint8Array(64).fill(8)), mac }];
    });
    expect(tampered.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(b.snapshots).toEqual([]);

    // The same upload, untampered, is installed: the refusals above were for the forgery alone.
    const honest = new PeerAuthenticator(SECRET).dial("snapshot", 1, 2);
    const accepted = await upload(honest.metadata, (headers) => {
      const frames = honest.finish(headers!);
      const c = chunk();
      return [{ ...c, mac: frames.sign(snapshotChunkFields(c.groupId, c.offset, c.last, c.crc32c, c.header.length), c.header, c.data) }];
    });
    expect(accepted.error).toBeNull();
    expect(accepted.ack?.ok).toBe(true);
    expect(b.snapshots.length).toBe(1);
  });

  it("warns at start-up when the peer port has neither TLS nor a secret", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = pino({ level: "info" }, sink);
    await startNode(1, { peerSecret: undefined, logger });
    await startNode(2, { logger });
    const logs = lines.map((line) => JSON.parse(line) as { level: number; msg: string; authentication?: string });
    expect(logs.filter((l) => l.msg === "peer transport listening").map((l) => l.authentication)).toEqual(["none", "cluster secret"]);
    const warnings = logs.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toEqual([expect.stringContaining("peer port is not authenticated")]);
    expect(lines.join("")).not.toContain(SECRET);
  });
});
