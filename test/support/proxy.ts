/**
 * Userspace TCP fault injection between tally nodes (the box has no netem).
 *
 * Topology: one proxy per DESTINATION node. Node N listens privately (TALLY_NODE_PEER_LISTEN) and the
 * cluster.yaml's peer address for N is its proxy's, so every byte sent to N passes through proxy N.
 * The peer transport opens one connection per ordered node pair, so a connection accepted by proxy
 * N carries exactly the link (source -> N). The source is identified by the kernel, not by parsing
 * gRPC: the dialer's ephemeral port is looked up in /proc/net/tcp to get the socket inode, and the
 * inode is found among the file descriptors of the node processes we started (Linux only). A
 * connection whose source cannot be identified is tagged 0 and only obeys "cut everything into N".
 *
 * Faults (per directed link from -> to):
 *   - cut: existing connections are destroyed and new ones closed at once; the transport retries
 *     with backoff (at most 2 s), so healing is quick. Destroying rather than black-holing keeps
 *     no unbounded buffers and never delivers a corrupted HTTP/2 stream.
 *   - latency + jitter: every chunk is delayed; order within a connection is kept.
 *   - bandwidth cap: chunks are released no faster than bytesPerSecond.
 *   - emulated packet loss (lossRate): what TCP shows an application when a segment is lost is
 *     not a missing byte but a stall: the stream stops until the retransmission timeout fires
 *     (Linux: 200 ms at least, doubling on each consecutive loss), then everything behind it
 *     arrives in order. So a chunk "lost" with probability lossRate is held rtoMs (doubled per
 *     consecutive loss on that direction, up to RTO_MAX_MS) and the chunks behind it wait for it.
 *     With resetRate, a chunk rarely resets the connection instead (a peer giving up after too
 *     many retransmissions, a middlebox dropping state). Real loss on the wire: iptables-loss.ts.
 * Every queue is bounded: beyond QUEUED_BYTES_MAX the sending socket is paused (TCP backpressure).
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";

const QUEUED_BYTES_MAX = 4 * 1024 * 1024;
const IDENTIFY_ATTEMPTS_MAX = 5;
const IDENTIFY_RETRY_MS = 20;

export interface LinkShape {
  latencyMs?: number;
  jitterMs?: number;
  /** 0 or undefined: unlimited. */
  bytesPerSecond?: number;
  /** Emulated loss: the probability that a chunk stalls its direction for a retransmission timeout. */
  lossRate?: number;
  /** The first retransmission timeout of an emulated loss, ms (default 200, Linux's minimum RTO). */
  rtoMs?: number;
  /** The probability that a chunk resets the connection (both sockets destroyed) instead of passing. */
  resetRate?: number;
}

const RTO_MS = 200;
/** Linux caps the RTO at 120 s; a stall that long would only time the test out, so the doubling stops here. */
const RTO_MAX_MS = 3_200;

/** Checks a shape's figures: bad input is refused before it changes any link. */
export function checkShape(shape: LinkShape): LinkShape {
  const rate = (name: keyof LinkShape, value: number | undefined) => {
    if (value !== undefined && !(value >= 0 && value <= 1)) throw new RangeError(`link shape: ${name} must be in [0, 1], got ${value}`);
  };
  const ms = (name: keyof LinkShape, value: number | undefined) => {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0))
      throw new RangeError(`link shape: ${name} must be >= 0, got ${value}`);
  };
  rate("lossRate", shape.lossRate);
  rate("resetRate", shape.resetRate);
  ms("latencyMs", shape.latencyMs);
  ms("jitterMs", shape.jitterMs);
  ms("rtoMs", shape.rtoMs);
  ms("bytesPerSecond", shape.bytesPerSecond);
  return shape;
}

interface Pipe {
  from: number;
  client: Socket;
  upstream: Socket;
  closed: boolean;
}

/** Resolves the node id that owns the TCP socket bound to 127.0.0.1:localPort (the dialer's side). */
export type SourceIdentifier = (dialerPort: number, listenPort: number) => number | undefined;

/**
 * Builds a SourceIdentifier over the processes `pids()` returns (node id -> pid).
 * Reads /proc/net/tcp{,6}; returns undefined when the socket or its owner is not found.
 */
export function procSourceIdentifier(pids: () => Map<number, number>): SourceIdentifier {
  return (dialerPort, listenPort) => {
    const inode = findSocketInode(dialerPort, listenPort);
    if (inode === undefined) return undefined;
    const needle = `socket:[${inode}]`;
    for (const [nodeId, pid] of pids()) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === needle) return nodeId;
        } catch {
          // fd closed while scanning
        }
      }
    }
    return undefined;
  };
}

function findSocketInode(localPort: number, remotePort: number): string | undefined {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const local = parseInt(fields[1]!.split(":")[1]!, 16);
      const remote = parseInt(fields[2]!.split(":")[1]!, 16);
      if (local === localPort && remote === remotePort && fields[9] !== "0") return fields[9];
    }
  }
  return undefined;
}

/** All traffic to one node. */
export class NodeProxy {
  private server: Server | undefined;
  private readonly pipes = new Set<Pipe>();
  /** Sources whose link to this node is cut; 0 stands for "every source, identified or not". */
  private readonly cutFrom = new Set<number>();
  private readonly shapes = new Map<number, LinkShape>();
  /** Bytes forwarded, for reports and tests. */
  bytesForwarded = 0;
  connectionsRefused = 0;
  /** Emulated losses (stalls of a retransmission timeout) and resets, for reports and tests. */
  lossStalls = 0;
  resets = 0;

  constructor(
    readonly toNode: number,
    readonly listenHost: string,
    readonly listenPort: number,
    readonly targetHost: string,
    readonly targetPort: number,
    private readonly identify: SourceIdentifier,
    /** Uniform [0, 1) for jitter; pass a seeded PRNG's nextFloat to make delays replayable. */
    private readonly random: () => number = Math.random,
  ) {}

  async start(): Promise<void> {
    const server = createServer((client) => void this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.listenPort, this.listenHost, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const pipe of this.pipes) this.destroy(pipe);
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Cuts the link from `from` (0 = from everyone) into this node. */
  cut(from: number): void {
    this.cutFrom.add(from);
    for (const pipe of this.pipes) if (this.isCut(pipe.from)) this.destroy(pipe);
  }

  heal(from?: number): void {
    if (from === undefined) this.cutFrom.clear();
    else this.cutFrom.delete(from);
  }

  shape(from: number, shape: LinkShape | undefined): void {
    if (shape === undefined) this.shapes.delete(from);
    else this.shapes.set(from, checkShape(shape));
  }

  isCut(from: number): boolean {
    return this.cutFrom.has(0) || (from !== 0 && this.cutFrom.has(from));
  }

  get openConnections(): number {
    return this.pipes.size;
  }

  private async accept(client: Socket): Promise<void> {
    client.pause();
    client.on("error", () => undefined);
    let from: number | undefined;
    for (let attempt = 0; attempt < IDENTIFY_ATTEMPTS_MAX && from === undefined; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, IDENTIFY_RETRY_MS));
      from = client.remotePort === undefined ? undefined : this.identify(client.remotePort, this.listenPort);
    }
    const source = from ?? 0;
    if (this.isCut(source) || this.server === undefined) {
      this.connectionsRefused++;
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: this.targetHost, port: this.targetPort });
    upstream.on("error", () => undefined);
    const pipe: Pipe = { from: source, client, upstream, closed: false };
    this.pipes.add(pipe);
    this.forward(pipe, client, upstream);
    this.forward(pipe, upstream, client);
    client.on("close", () => this.destroy(pipe));
    upstream.on("close", () => this.destroy(pipe));
    client.resume();
  }

  /** Forwards `input` to `output`, applying the link's current shape chunk by chunk, in order. */
  private forward(pipe: Pipe, input: Socket, output: Socket): void {
    let queuedBytes = 0;
    let releaseAtMs = 0;
    let consecutiveLosses = 0;
    // One FIFO and one timer per direction. A timer per chunk did not keep order: its delay was
    // computed from Date.now() while Node counts a timer from the loop's cached time (and in
    // whole ms), so a later chunk's timer could fire first and corrupt the stream.
    const queue: Array<{ chunk: Buffer; releaseAtMs: number }> = [];
    const schedule = (): void => void setTimeout(release, Math.max(0, queue[0]!.releaseAtMs - Date.now()));
    const release = (): void => {
      const now = Date.now();
      while (queue.length > 0 && queue[0]!.releaseAtMs <= now) {
        const { chunk } = queue.shift()!;
        queuedBytes -= chunk.length;
        if (pipe.closed) continue;
        this.bytesForwarded += chunk.length;
        output.write(chunk);
      }
      if (queuedBytes <= QUEUED_BYTES_MAX) input.resume();
      if (queue.length > 0) schedule();
    };
    input.on("data", (chunk: Buffer) => {
      if (pipe.closed) return;
      const shape = this.shapes.get(pipe.from);
      if (shape?.resetRate && this.random() < shape.resetRate) {
        this.resets++;
        this.destroy(pipe);
        return;
      }
      const delayMs = shape ? (shape.latencyMs ?? 0) + this.random() * (shape.jitterMs ?? 0) : 0;
      const transferMs = shape?.bytesPerSecond ? (chunk.length * 1000) / shape.bytesPerSecond : 0;
      let stallMs = 0;
      if (shape?.lossRate && this.random() < shape.lossRate) {
        this.lossStalls++;
        stallMs = Math.min(RTO_MAX_MS, (shape.rtoMs ?? RTO_MS) * 2 ** consecutiveLosses++);
      } else consecutiveLosses = 0;
      const now = Date.now();
      // Order is kept: a chunk is never released before the one ahead of it (a stalled chunk holds
      // every chunk behind it, as a lost segment holds a TCP stream until it is retransmitted).
      releaseAtMs = Math.max(releaseAtMs, now + delayMs) + stallMs + transferMs;
      if (releaseAtMs <= now && queue.length === 0) {
        this.bytesForwarded += chunk.length;
        output.write(chunk);
        return;
      }
      queue.push({ chunk, releaseAtMs });
      queuedBytes += chunk.length;
      if (queuedBytes > QUEUED_BYTES_MAX) input.pause();
      if (queue.length === 1) schedule();
    });
  }

  private destroy(pipe: Pipe): void {
    if (pipe.closed) return;
    pipe.closed = true;
    this.pipes.delete(pipe);
    pipe.client.destroy();
    pipe.upstream.destroy();
  }
}

/** One NodeProxy per node; directed-link controls on top. */
export class ProxyMesh {
  constructor(readonly proxies: Map<number, NodeProxy>) {}

  async start(): Promise<void> {
    for (const proxy of this.proxies.values()) await proxy.start();
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }

  private proxy(to: number): NodeProxy {
    const proxy = this.proxies.get(to);
    if (proxy === undefined) throw new Error(`no proxy for node ${to}`);
    return proxy;
  }

  /** One-way: messages from `from` no longer reach `to`. */
  cutLink(from: number, to: number): void {
    this.proxy(to).cut(from);
  }

  /** Both directions between every node of `a` and every node of `b`. */
  partition(a: number[], b: number[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
    }
  }

  isolate(node: number): void {
    const others = [...this.proxies.keys()].filter((id) => id !== node);
    this.partition([node], others);
  }

  shapeAll(shape: LinkShape | undefined): void {
    for (const proxy of this.proxies.values()) for (const from of [0, ...this.proxies.keys()]) proxy.shape(from, shape);
  }

  healAll(): void {
    for (const proxy of this.proxies.values()) {
      proxy.heal();
      for (const from of [0, ...this.proxies.keys()]) proxy.shape(from, undefined);
    }
  }
}
