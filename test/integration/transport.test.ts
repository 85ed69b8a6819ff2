import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { message, waitFor } from "../support/peer-messages.js";
import { type Entry, EntryType, type Message, MessageType } from "../../src/raft/types.js";
import { crc32c } from "../../src/storage/crc32c.js";
import {
  decodeFrame,
  decodeSnapshotHeader,
  encodeFrame,
  encodeSnapshotHeader,
  FrameDecodeError,
  type GroupMessage,
} from "../../src/transport/codec.js";
import { peerService, type RaftFrameWire } from "../../src/transport/peer-proto.js";
import { PeerTransport, type PeerTransportOptions } from "../../src/transport/peer-transport.js";
import { createPrng } from "../../src/util/prng.js";

// ---- helpers ----

function entry(index: number, bytes: number, seed = index): Entry {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 7 + seed) & 0xff;
  return { term: 3, index, type: EntryType.Normal, data };
}

interface Node {
  id: number;
  transport: PeerTransport;
  received: Array<{ from: number; groupId: number; message: Message }>;
  snapshots: Array<{ from: number; groupId: number; message: Message }>;
  snapshotResults: Array<{ to: number; groupId: number; ok: boolean }>;
  unreachable: number[];
}

const running: PeerTransport[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((t) => t.close()));
});

async function startNode(id: number, overrides: Partial<PeerTransportOptions> = {}, port = 0): Promise<Node> {
  const node: Node = {
    id,
    transport: undefined as unknown as PeerTransport,
    received: [],
    snapshots: [],
    snapshotResults: [],
    unreachable: [],
  };
  node.transport = new PeerTransport({
    nodeId: id,
    listenAddress: `127.0.0.1:${port}`,
    peers: new Map(),
    onMessages: (from, batch) => {
      for (const [groupId, m] of batch) node.received.push({ from, groupId, message: m });
    },
    onSnapshot: async (from, groupId, m) => {
      node.snapshots.push({ from, groupId, message: m });
    },
    reconnectBackoffMinMs: 20,
    reconnectBackoffMaxMs: 200,
    ...overrides,
  });
  node.transport.onSnapshotResult = (to, groupId, ok) => node.snapshotResults.push({ to, groupId, ok });
  node.transport.onUnreachable = (to) => node.unreachable.push(to);
  running.push(node.transport);
  await node.transport.start();
  return node;
}

function connectAll(nodes: Node[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.setPeer(b.id, b.transport.boundAddress);
}

/** A raw gRPC client to a transport's server, for sending what a correct peer never would. */
function rawClient(address: string): InstanceType<ReturnType<typeof peerService>["Client"]> {
  return new (peerService().Client)(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
}

function rawFrameStatus(address: string, frames: RaftFrameWire[]): Promise<grpc.StatusObject> {
  const client = rawClient(address);
  const stream = client.Raft(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
  return new Promise<grpc.StatusObject>((resolve) => {
    stream.on("error", () => undefined);
    stream.on("data", () => undefined);
    stream.on("status", (status: grpc.StatusObject) => {
      client.close();
      resolve(status);
    });
    for (const frame of frames) stream.write(frame);
  });
}

// ---- codec ----

describe("transport codec", () => {
  const full: Message = {
    type: MessageType.App,
    to: 2,
    from: 1,
    term: 2 ** 40,
    logTerm: 7,
    index: 2 ** 53 - 1,
    entries: [entry(10, 0), entry(11, 300), { term: 3, index: 12, type: EntryType.ConfChange, data: Uint8Array.of(1, 2) }],
    commit: 9,
    reject: true,
    rejectHint: 8,
    context: Uint8Array.of(9, 9, 9),
  };
  const snap: Message = message(1, 2, {
    type: MessageType.Snap,
    snapshot: {
      metadata: {
        index: 50,
        term: 4,
        confState: { voters: [1, 2], learners: [3], votersOutgoing: [1], learnersNext: [], autoLeave: true },
      },
      data: Uint8Array.of(5, 6, 7),
    },
  });

  it("round-trips every message field for many groups", () => {
    const batch: GroupMessage[] = [
      [0, full],
      [2 ** 32 - 1, message(1, 2)],
      [17, snap],
    ];
    expect(decodeFrame(encodeFrame(batch))).toEqual(batch);
    expect(decodeFrame(encodeFrame([]))).toEqual([]);
  });

  it("decodes entry data as plain, unshared Uint8Arrays", () => {
    const encoded = encodeFrame([[1, full]]);
    const decoded = decodeFrame(encoded);
    const data = decoded[0]![1].entries[1]!.data;
    expect(data.constructor).toBe(Uint8Array);
    encoded.payload.fill(0);
    expect(data).toEqual(entry(11, 300).data); // a copy: the frame buffer can be reused
  });

  it("carries a Snap message's header without its data", () => {
    const { message: header, dataBytes } = decodeSnapshotHeader(encodeSnapshotHeader(snap));
    expect(dataBytes).toBe(3);
    expect(header.snapshot?.metadata).toEqual(snap.snapshot?.metadata);
    expect(header.snapshot?.data.length).toBe(0);
  });

  it("rejects every truncation of a frame with FrameDecodeError", () => {
    const { payload } = encodeFrame([
      [3, full],
      [4, snap],
    ]);
    for (let length = 0; length < payload.length; length++) {
      const truncated = payload.slice(0, length);
      // Even with a checksum that matches the truncated bytes, decoding must fail cleanly.
      expect(() => decodeFrame({ payload: truncated, crc32c: crc32c(truncated) }), `length ${length}`).toThrow(FrameDecodeError);
    }
  });

  it("rejects a checksum mismatch", () => {
    const frame = encodeFrame([[3, full]]);
    const flipped = frame.payload.slice();
    flipped[flipped.length - 5]! ^= 1;
    expect(() => decodeFrame({ payload: flipped, crc32c: frame.crc32c })).toThrow(/checksum mismatch/);
  });

  it("rejects well-formed msgpack with wrong field types", () => {
    const cases: unknown[] = [
      encodeFrame([[1, { ...full, term: -1 }]]),
      encodeFrame([[1, { ...full, type: 99 as MessageType }]]),
      encodeFrame([[1, { ...full, reject: 1 as unknown as boolean }]]),
      encodeFrame([[1, { ...full, entries: [{ ...entry(1, 1), type: 7 as EntryType }] }]]),
      encodeFrame([[2 ** 32, full]]),
      encodeFrame([[1, { ...full, index: 2 ** 53 }]]),
    ];
    for (const frame of cases) expect(() => decodeFrame(frame as ReturnType<typeof encodeFrame>)).toThrow(FrameDecodeError);
  });

  it("never throws anything but FrameDecodeError on random garbage (seeded)", () => {
    const prng = createPrng(20240601);
    const base = encodeFrame([
      [3, full],
      [4, snap],
    ]).payload;
    for (let round = 0; round < 1000; round++) {
      const mutated = base.slice();
      const flips = 1 + prng.nextInt(4);
      for (let i = 0; i < flips; i++) mutated[prng.nextInt(mutated.length)] = prng.nextInt(256);
      const garbage = round % 2 === 0 ? mutated : Uint8Array.from({ length: prng.nextInt(64) }, () => prng.nextInt(256));
      try {
        decodeFrame({ payload: garbage, crc32c: crc32c(garbage) });
      } catch (error) {
        expect(error, `round ${round}`).toBeInstanceOf(FrameDecodeError);
      }
    }
  });
});

// ---- transport over real gRPC on 127.0.0.1 ----

describe("PeerTransport", () => {
  it("delivers messages of many groups intact and in order per pair (3 nodes)", async () => {
    const nodes = [await startNode(1), await startNode(2), await startNode(3)];
    connectAll(nodes);
    const groups = 40;
    const rounds = 25;
    const sent = new Map<string, Array<{ groupId: number; message: Message }>>();
    for (let round = 0; round < rounds; round++) {
      for (const from of nodes) {
        for (const to of nodes) {
          if (from === to) continue;
          for (let g = 0; g < groups; g++) {
            const seq = round * groups + g;
            const m = message(from.id, to.id, {
              type: g % 2 === 0 ? MessageType.App : MessageType.Heartbeat,
              index: seq,
              commit: round,
              entries: g % 2 === 0 ? [entry(seq + 1, (seq * 13) % 200, from.id)] : [],
            });
            from.transport.send(to.id, g, m);
            const key = `${from.id}->${to.id}`;
            if (!sent.has(key)) sent.set(key, []);
            sent.get(key)!.push({ groupId: g, message: m });
          }
        }
        from.transport.flush(); // one frame per peer per round
      }
    }
    const expected = rounds * groups * (nodes.length - 1);
    await waitFor(() => nodes.every((n) => n.received.length === expected), "all messages");
    for (const to of nodes) {
      for (const from of nodes) {
        if (from === to) continue;
        const got = to.received.filter((r) => r.from === from.id).map(({ groupId, message: m }): GroupMessage => [groupId, m]);
        const want = sent.get(`${from.id}->${to.id}`)!.map(({ groupId, message: m }): GroupMessage => [groupId, m]);
        expect(got.length).toBe(want.length);
        // The encoding is deterministic and covers every field: equal bytes mean equal sequences
        // (and byte comparison is much faster than a deep toEqual of thousands of messages).
        expect(Buffer.from(encodeFrame(got).payload).equals(Buffer.from(encodeFrame(want).payload))).toBe(true);
        expect(got[got.length - 1]).toEqual(want[want.length - 1]);
      }
    }
    for (const n of nodes) {
      expect(n.transport.stats.dropped).toBe(0);
      expect(n.transport.stats.messagesSent).toBe(expected);
      // Batching: about one frame per peer per flush, not one per message.
      expect(n.transport.stats.framesSent).toBeLessThanOrEqual(rounds * (nodes.length - 1));
    }
  });

  it("splits frames above maxFrameBytes and still delivers in order", async () => {
    const a = await startNode(1, { maxFrameBytes: 8 * 1024 });
    const b = await startNode(2);
    connectAll([a, b]);
    for (let i = 0; i < 50; i++) a.transport.send(2, 1, message(1, 2, { type: MessageType.App, index: i, entries: [entry(i + 1, 1000)] }));
    a.transport.flush();
    await waitFor(() => b.received.length === 50, "50 messages");
    expect(b.received.map((r) => r.message.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(a.transport.stats.framesSent).toBeGreaterThanOrEqual(6);
  });

  /** Nodes 1 and 2 connected, then node 2's transport closed and node 1 noticing; node 2's port. */
  async function pairWithPeerGone(aOverrides: Partial<PeerTransportOptions> = {}): Promise<{ a: Node; port: number }> {
    const a = await startNode(1, aOverrides);
    const b = await startNode(2);
    const port = Number(b.transport.boundAddress.split(":")[1]);
    connectAll([a, b]);
    await waitFor(() => a.transport.isConnected(2), "first connection");
    await b.transport.close();
    await waitFor(() => a.unreachable.includes(2) && !a.transport.isConnected(2), "loss noticed");
    return { a, port };
  }

  it("reconnects after the peer restarts, reporting it unreachable meanwhile", async () => {
    const { a, port } = await pairWithPeerGone();
    const droppedBefore = a.transport.stats.dropped;
    a.transport.send(2, 1, message(1, 2));
    expect(a.transport.stats.dropped).toBe(droppedBefore + 1); // peer down: dropped, not queued

    const b = await startNode(2, {}, port);
    b.transport.setPeer(1, a.transport.boundAddress);
    await waitFor(() => a.transport.isConnected(2), "reconnection");
    a.transport.send(2, 5, message(1, 2, { commit: 77 }));
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "message after restart");
    expect(b.received[0]).toMatchObject({ from: 1, groupId: 5, message: { commit: 77 } });
    expect(a.transport.stats.reconnects).toBeGreaterThanOrEqual(1);
  });

  it("reconnects at once, not after its backoff, when the peer it lost opens a stream to it", async () => {
    // A 20 s backoff: only hearing from the peer can bring the link back within the wait below.
    const { a, port } = await pairWithPeerGone({ reconnectBackoffMinMs: 20_000, reconnectBackoffMaxMs: 20_000 });
    const b = await startNode(2, {}, port);
    b.transport.setPeer(1, a.transport.boundAddress);
    b.transport.send(1, 3, message(2, 1, { commit: 5 }));
    b.transport.flush();
    await waitFor(() => a.received.some((r) => r.from === 2 && r.groupId === 3), "message from the restarted peer");
    await waitFor(() => a.transport.isConnected(2), "reconnection well before the backoff ends", 5_000);
    a.transport.send(2, 4, message(1, 2, { commit: 9 }));
    a.transport.flush();
    await waitFor(() => b.received.some((r) => r.groupId === 4), "message to the restarted peer", 5_000);
  });

  it("reconnects at once when the restarted peer has nothing to send yet", async () => {
    // A restarted follower sends nothing until a leader speaks to it (or its election timeout),
    // so its streams' opening alone must bring the peer's link back: it says hello with an empty
    // frame. Without that the leader's heartbeats waited out the backoff (or the follower's
    // election timeout), and a restarted node stayed unready ~0.6 s longer.
    const { a, port } = await pairWithPeerGone({ reconnectBackoffMinMs: 20_000, reconnectBackoffMaxMs: 20_000 });
    const b = await startNode(2, {}, port);
    b.transport.setPeer(1, a.transport.boundAddress);
    await waitFor(() => a.transport.isConnected(2), "reconnection well before the backoff ends", 5_000);
    a.transport.send(2, 4, message(1, 2, { commit: 9 }));
    a.transport.flush();
    await waitFor(() => b.received.some((r) => r.groupId === 4), "message to the restarted peer", 5_000);
    expect(a.received).toEqual([]); // the hello delivers no message
  });

  it("bounds the per-peer queue: a full queue drops and counts", async () => {
    const a = await startNode(1, { maxQueuedMessagesPerPeer: 10 });
    const b = await startNode(2);
    connectAll([a, b]);
    await waitFor(() => a.transport.isConnected(2), "connection");
    for (let i = 0; i < 25; i++) a.transport.send(2, 1, message(1, 2, { index: i }));
    expect(a.transport.stats.dropped).toBe(15);
    a.transport.flush();
    await waitFor(() => b.received.length === 10, "10 messages");
    expect(b.received.map((r) => r.message.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The queue is free again after the flush.
    a.transport.send(2, 1, message(1, 2, { index: 99 }));
    a.transport.flush();
    await waitFor(() => b.received.length === 11, "message after flush");
    expect(a.transport.stats.dropped).toBe(15);
  });

  it("respects backpressure: stops writing on a stalled receiver, bounds memory by dropping, resumes on drain", async () => {
    // A receiver that accepts the stream but does not read: HTTP/2 flow control pushes back.
    const server = new grpc.Server();
    const calls: Array<grpc.ServerDuplexStream<RaftFrameWire, RaftFrameWire>> = [];
    let received = 0;
    server.addService(peerService().service, {
      Raft: (call: grpc.ServerDuplexStream<RaftFrameWire, RaftFrameWire>) => {
        call.sendMetadata(new grpc.Metadata());
        call.on("error", () => undefined);
        calls.push(call);
      },
      Snapshot: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { ok: false, error: "test" }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
    );
    try {
      const a = await startNode(1, { maxQueuedMessagesPerPeer: 64, maxFrameBytes: 16 * 1024 });
      a.transport.setPeer(2, `127.0.0.1:${port}`);
      await waitFor(() => a.transport.isConnected(2), "connection");
      const total = 2000;
      const payload = 4 * 1024;
      for (let i = 0; i < total; i++) {
        a.transport.send(2, 1, message(1, 2, { type: MessageType.App, index: i, entries: [entry(i + 1, payload)] }));
        if (i % 16 === 15) {
          a.transport.flush();
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      a.transport.flush();
      const { messagesSent, dropped } = a.transport.stats;
      expect(dropped).toBeGreaterThan(0);
      // Written while the receiver was stalled: bounded by flow-control windows, well below the 8 MB offered.
      expect(messagesSent * payload).toBeLessThan(4 * 1024 * 1024);
      expect(messagesSent + dropped).toBeLessThanOrEqual(total);
      expect(total - messagesSent - dropped).toBeLessThanOrEqual(64); // at most a queue's worth waits

      // The receiver starts reading: everything written arrives, the queued rest follows on drain.
      const call = calls[0]!;
      call.on("data", (frame: RaftFrameWire) => {
        received += decodeFrame({ payload: frame.payload, crc32c: frame.crc32c }).length;
      });
      await waitFor(() => received === total - a.transport.stats.dropped, "backlog delivered");
      expect(a.transport.stats.messagesSent).toBe(received);
    } finally {
      server.forceShutdown();
    }
  });

  it("streams a multi-megabyte snapshot in chunks and reports success", async () => {
    const a = await startNode(1, { snapshotChunkBytes: 256 * 1024 });
    const b = await startNode(2);
    connectAll([a, b]);
    const data = new Uint8Array(5 * 1024 * 1024 + 123);
    const prng = createPrng(7);
    for (let i = 0; i < data.length; i += 4) data[i] = prng.nextInt(256);
    const snap = message(1, 2, {
      type: MessageType.Snap,
      term: 6,
      snapshot: {
        metadata: {
          index: 900,
          term: 5,
          confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
        },
        data,
      },
    });
    a.transport.send(2, 42, snap);
    // Heartbeats keep flowing on the Raft stream meanwhile.
    a.transport.send(2, 42, message(1, 2));
    a.transport.flush();
    await waitFor(() => a.snapshotResults.length === 1, "snapshot result", 20_000);
    expect(a.snapshotResults).toEqual([{ to: 2, groupId: 42, ok: true }]);
    expect(b.snapshots.length).toBe(1);
    const got = b.snapshots[0]!;
    expect(got.from).toBe(1);
    expect(got.groupId).toBe(42);
    expect(got.message.snapshot?.metadata).toEqual(snap.snapshot?.metadata);
    expect(got.message.snapshot?.data.length).toBe(data.length);
    expect(crc32c(got.message.snapshot!.data)).toBe(crc32c(data));
    expect({ ...got.message, snapshot: undefined }).toEqual({ ...snap, snapshot: undefined });
    await waitFor(() => b.received.length === 1, "heartbeat");
    expect(a.transport.stats.snapshotsSent).toBe(1);
    expect(b.transport.stats.snapshotsReceived).toBe(1);
  });

  it("reports a snapshot as failed when the receiver refuses it or the peer is unknown", async () => {
    const a = await startNode(1);
    const b = await startNode(2, {
      onSnapshot: async () => {
        throw new Error("not now");
      },
    });
    connectAll([a, b]);
    const snap = (to: number): Message =>
      message(1, to, {
        type: MessageType.Snap,
        snapshot: {
          metadata: {
            index: 5,
            term: 1,
            confState: { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
          },
          data: new Uint8Array(1000),
        },
      });
    a.transport.send(2, 1, snap(2));
    a.transport.send(9, 2, snap(9)); // no such peer
    await waitFor(() => a.snapshotResults.length === 2, "two results");
    expect(a.snapshotResults).toContainEqual({ to: 2, groupId: 1, ok: false });
    expect(a.snapshotResults).toContainEqual({ to: 9, groupId: 2, ok: false });
  });

  it("rejects a corrupt frame without crashing and keeps serving other peers", async () => {
    const a = await startNode(1);
    const b = await startNode(2);
    connectAll([a, b]);
    const good = encodeFrame([[1, message(1, 2)]]);
    const badChecksum = await rawFrameStatus(b.transport.boundAddress, [{ fromNode: "1", payload: good.payload, crc32c: good.crc32c ^ 1 }]);
    expect(badChecksum.code).toBe(grpc.status.DATA_LOSS);
    const truncated = good.payload.slice(0, good.payload.length - 3);
    const badPayload = await rawFrameStatus(b.transport.boundAddress, [{ fromNode: "1", payload: truncated, crc32c: crc32c(truncated) }]);
    expect(badPayload.code).toBe(grpc.status.DATA_LOSS);
    const misaddressed = encodeFrame([[1, message(1, 3)]]);
    const wrongNode = await rawFrameStatus(b.transport.boundAddress, [{ fromNode: "1", ...misaddressed }]);
    expect(wrongNode.code).toBe(grpc.status.DATA_LOSS);
    const spoofed = await rawFrameStatus(b.transport.boundAddress, [{ fromNode: "n3", ...good }]);
    expect(spoofed.code).toBe(grpc.status.DATA_LOSS);
    expect(b.transport.stats.framesRejected).toBe(4);
    expect(b.received).toEqual([]);

    a.transport.send(2, 1, message(1, 2, { commit: 5 }));
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "good message");
    expect(b.received[0]!.message.commit).toBe(5);
  });

  it("accepts frames that name the sender as 'n<id>'", async () => {
    // Node 1 must be a configured peer: frames from unknown nodes are refused.
    const b = await startNode(2, { peers: new Map([[1, "127.0.0.1:1"]]) });
    const frame = encodeFrame([[1, message(1, 2, { commit: 3 })]]);
    const client = rawClient(b.transport.boundAddress);
    const stream = client.Raft(new grpc.Metadata(), {});
    stream.on("error", () => undefined);
    stream.write({ fromNode: "n1", ...frame });
    try {
      await waitFor(() => b.received.length === 1, "frame from n1");
      expect(b.received[0]).toMatchObject({ from: 1, groupId: 1 });
    } finally {
      stream.cancel();
      client.close();
    }
  });

  it("rejects start() with a clear message when the address is taken", async () => {
    const a = await startNode(1);
    const clash = new PeerTransport({
      nodeId: 2,
      listenAddress: a.transport.boundAddress,
      peers: new Map(),
      onMessages: () => undefined,
      onSnapshot: async () => undefined,
    });
    running.push(clash);
    await expect(clash.start()).rejects.toThrow(
      new RegExp(`cannot listen for peer traffic on ${a.transport.boundAddress.replace(/\./g, "\\.")}`),
    );
  });

  it("close() leaves no sockets or timers behind", async () => {
    const baseline = countHandles();
    const nodes = [await startNode(1), await startNode(2)];
    connectAll(nodes);
    await waitFor(() => nodes[0]!.transport.isConnected(2) && nodes[1]!.transport.isConnected(1), "connections");
    expect(countHandles()).toBeGreaterThan(baseline);
    await Promise.all(running.splice(0).map((t) => t.close()));
    await waitFor(() => countHandles() <= baseline, "handles released", 5_000);
  });
});

function countHandles(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === "TCPServerWrap" || kind === "TCPSocketWrap" || kind === "Timeout")
    .length;
}
