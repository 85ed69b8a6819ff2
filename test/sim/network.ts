/**
 * The simulated network between raft nodes (TigerBeetle's packet simulator in miniature). Every
 * message independently gets a seeded delay (so messages reorder), may be dropped or duplicated,
 * and sometimes hits a latency spike. Links can be cut one way or both ways: symmetric
 * partitions, asymmetric cuts, an isolated leader. A cut applies at send and at delivery, so
 * packets in flight when a partition starts are lost too.
 *
 * Invariant (as in PeerTransport.send): a message leaves a node only with `from` naming that node
 * and `to` naming another. Peers are authenticated per connection and Raft answers `m.from`, so a
 * core that relays another node's message unchanged is a bug the simulator must stop on.
 */
import { assert } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import type { Message, NodeId } from "../../src/raft/types.js";

export interface NetworkOptions {
  delayMinMs: number;
  delayMaxMs: number;
  dropRate: number;
  duplicateRate: number;
  /** Chance that a packet is held much longer than usual (reordering across many packets). */
  spikeRate: number;
  spikeMaxMs: number;
}

export const calmNetwork: NetworkOptions = {
  delayMinMs: 0.5,
  delayMaxMs: 4,
  dropRate: 0.005,
  duplicateRate: 0.005,
  spikeRate: 0.002,
  spikeMaxMs: 40,
};

export class SimNetwork {
  private readonly blocked = new Set<number>();

  constructor(
    private readonly prng: Prng,
    readonly options: NetworkOptions,
  ) {
    assert(options.delayMinMs >= 0 && options.delayMaxMs >= options.delayMinMs, "network: bad delay range");
    assert(options.dropRate >= 0 && options.dropRate < 1, "network: drop rate must be in [0, 1)");
  }

  /** Every message a node puts on the wire passes here first (see the invariant above). */
  checkSender(sender: NodeId, message: Message): void {
    assert(message.from === sender, `message.from ${message.from} is not the sending node ${sender}`);
    assert(message.to !== sender, `node ${sender} sent a message to itself`);
  }

  /** Delivery delays for one packet: [] when it is lost, two entries when it is duplicated. */
  plan(from: NodeId, to: NodeId): number[] {
    if (this.isCut(from, to)) return [];
    if (this.prng.chance(this.options.dropRate)) return [];
    const first = this.delay();
    if (!this.prng.chance(this.options.duplicateRate)) return [first];
    return [first, this.delay() + this.prng.nextFloat() * this.options.spikeMaxMs];
  }

  private delay(): number {
    const { delayMinMs, delayMaxMs, spikeRate, spikeMaxMs } = this.options;
    let delayMs = delayMinMs + this.prng.nextFloat() * (delayMaxMs - delayMinMs);
    if (this.prng.chance(spikeRate)) delayMs += this.prng.nextFloat() * spikeMaxMs;
    return delayMs;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(linkKey(from, to));
  }

  /** One-way cut: packets from `from` to `to` are lost. */
  cut(from: NodeId, to: NodeId): void {
    assert(from !== to, "network: a node cannot be cut from itself");
    this.blocked.add(linkKey(from, to));
  }

  /** Symmetric partition: no packet crosses between different groups. */
  partition(groups: NodeId[][]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.cut(a, b);
      }
    }
  }

  /** Cuts `node` off from every other node in both directions. */
  isolate(node: NodeId, others: NodeId[]): void {
    for (const other of others) {
      if (other === node) continue;
      this.cut(node, other);
      this.cut(other, node);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Restores every link to and from `node`, leaving other cuts in place. */
  healNode(node: NodeId): void {
    for (const key of [...this.blocked]) {
      if (Math.floor(key / LINK_STRIDE) === node || key % LINK_STRIDE === node) this.blocked.delete(key);
    }
  }

  describeCuts(): string {
    if (this.blocked.size === 0) return "none";
    return [...this.blocked]
      .sort((a, b) => a - b)
      .map((key) => `${Math.floor(key / LINK_STRIDE)}->${key % LINK_STRIDE}`)
      .join(" ");
  }
}

const LINK_STRIDE = 1024;
function linkKey(from: NodeId, to: NodeId): number {
  assert(from > 0 && from < LINK_STRIDE && to > 0 && to < LINK_STRIDE, "network: node ids must be in [1, 1023]");
  return from * LINK_STRIDE + to;
}
