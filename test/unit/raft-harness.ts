/**
 * A tiny deterministic in-memory cluster for the Raft unit tests: every node is a RawNode over a
 * MemoryStorage; Readies are handled in the documented order; messages go through a queue that
 * tests can filter (drops, partitions). No timers, no I/O.
 */
import { createPrng } from "../../src/util/prng.js";
import {
  type ConfChange,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  type RaftConfig,
  type ReadState,
  type Ready,
  Role,
  decodeConfChange,
  MemoryStorage,
  RawNode,
} from "../../src/raft/index.js";

export interface NodeOptions extends Partial<Omit<RaftConfig, "id" | "storage" | "prng">> {}

export const defaultOptions: NodeOptions = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxSizePerMsg: 1 << 20,
  maxInflightMessages: 256,
  maxInflightBytes: 0,
  maxUncommittedEntriesBytes: 1 << 30,
  maxCommittedSizePerReady: 1 << 30,
  preVote: false,
  checkQuorum: false,
  leaseDriftTicks: 0,
};

export function makeConfig(id: NodeId, storage: MemoryStorage, seed: number, options: NodeOptions = {}): RaftConfig {
  return {
    ...(defaultOptions as Omit<RaftConfig, "id" | "storage" | "prng">),
    ...options,
    id,
    storage,
    prng: createPrng(seed * 1000 + id),
  };
}

export class TestNode {
  node: RawNode;
  /** Normal entries applied, in order (no-ops included). */
  applied: Entry[] = [];
  readStates: ReadState[] = [];
  up = true;

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    private readonly seed: number,
    private readonly options: NodeOptions,
  ) {
    this.node = new RawNode(makeConfig(id, storage, seed, options));
  }

  /** Crash and restart from what was persisted (MemoryStorage keeps only persisted state). */
  restart(extra: NodeOptions = {}): void {
    this.node = new RawNode(makeConfig(this.id, this.storage, this.seed + 7, { ...this.options, ...extra }));
    this.applied = [];
    this.readStates = [];
  }

  /** Data payloads applied so far, as strings. */
  appliedData(): string[] {
    return this.applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0).map((e) => new TextDecoder().decode(e.data));
  }
}

export class Cluster {
  nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  /** Return false to drop a message. */
  filter: (m: Message) => boolean = () => true;
  /** Observes every Ready before it is handled. */
  onReady: (id: NodeId, rd: Ready) => void = () => {};
  /** Every message ever sent, for assertions. */
  sent: Message[] = [];
  private cut = new Set<string>();

  constructor(
    ids: NodeId[],
    readonly options: NodeOptions = {},
    readonly seed = 1,
    members: NodeId[] = ids,
  ) {
    for (const id of ids) this.add(id, members.includes(id) ? members : undefined);
  }

  /** Adds a node; with `voters`, its storage is bootstrapped, otherwise it starts empty. */
  add(id: NodeId, voters?: NodeId[], options: NodeOptions = {}): TestNode {
    const storage = new MemoryStorage();
    if (voters !== undefined) RawNode.bootstrap(storage, voters);
    const n = new TestNode(id, storage, this.seed, { ...this.options, ...options });
    this.nodes.set(id, n);
    return n;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}-${other}`);
      this.cut.add(`${other}-${id}`);
    }
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}-${b}`);
    this.cut.add(`${b}-${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Handles every pending Ready of one node (persist, queue messages, apply, advance). */
  process(id: NodeId): boolean {
    const n = this.get(id);
    if (!n.up) return false;
    let did = false;
    for (let guard = 0; n.node.hasReady(); guard++) {
      if (guard > 10_000) throw new Error("process: too many Readies");
      did = true;
      const rd = n.node.ready();
      this.onReady(id, rd);
      if (rd.snapshot !== undefined) {
        n.storage.applySnapshot(rd.snapshot);
      }
      n.storage.append(rd.entries);
      if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) {
        // PeerTransport.send refuses a message whose `from` is not the sending node; so does this.
        if (m.from !== id) throw new Error(`node ${id} sent ${MessageType[m.type]} to ${m.to} with from ${m.from}`);
        this.sent.push(m);
        this.queue.push(m);
      }
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) {
          const cs = n.node.applyConfChange(decodeConfChange(e.data));
          n.storage.setConfState(cs);
        }
        n.applied.push(e);
      }
      n.readStates.push(...rd.readStates);
      n.node.advance();
    }
    return did;
  }

  /** Delivers queued messages (once each) to nodes that are up and not cut off. */
  deliver(): boolean {
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) {
      const to = this.nodes.get(m.to);
      if (to === undefined || !to.up) continue;
      if (this.cut.has(`${m.from}-${m.to}`)) continue;
      if (!this.filter(m)) continue;
      to.node.step(m);
    }
    return batch.length > 0;
  }

  /** Runs until no node has work and no message is in flight. */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      let did = false;
      for (const id of this.nodes.keys()) did = this.process(id) || did;
      did = this.deliver() || did;
      if (!did) return;
    }
    throw new Error("stabilize: did not settle");
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.get(id).node.tick();
  }

  /** Ticks every live node once per round and stabilizes in between. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) if (n.up) n.node.tick();
      this.stabilize();
    }
  }

  leader(): NodeId {
    const leaders = [...this.nodes.values()].filter((n) => n.up && n.node.status().role === Role.Leader);
    if (leaders.length === 0) return 0;
    // Several nodes may believe they lead in different terms; the highest term is the real one.
    leaders.sort((a, b) => b.node.status().term - a.node.status().term);
    return leaders[0]!.id;
  }

  /** Campaigns `id` and stabilizes; returns the leader. */
  elect(id: NodeId): NodeId {
    this.get(id).node.campaign();
    this.stabilize();
    return this.leader();
  }

  propose(id: NodeId, text: string): void {
    this.get(id).node.propose(new TextEncoder().encode(text));
  }

  proposeConfChange(id: NodeId, cc: ConfChange): void {
    this.get(id).node.proposeConfChange(cc);
  }

  sentOfType(type: MessageType): Message[] {
    return this.sent.filter((m) => m.type === type);
  }
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
