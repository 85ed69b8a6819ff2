/**
 * Regions on loopback for tests and the bench: one TestCluster per region, one userspace proxy per
 * directed region link (test/support/proxy.ts; the replicator of region `to` dials region `from`
 * through proxy[from->to], reaching it by the client option addressMap), and in-process
 * RegionReplicators (the code `tallyctl regions replicate` runs).
 */
import { RegionReplicator, TallyClient } from "../../src/client/index.js";
import { freePort, TestCluster, withDeadline, type TestClusterOptions } from "./cluster.js";

/** How long a teardown waits for one replicator, proxy or client to close. */
const CLOSE_DEADLINE_MS = 10_000;
import { NodeProxy, type LinkShape } from "./proxy.js";

export interface Region {
  name: string;
  cluster: TestCluster;
  client: TallyClient;
}

export interface RegionMeshOptions {
  /** Nodes of each region's cluster, by region order (default 1 each). */
  nodes?: number[];
  /** Uniform [0, 1) for the proxies' jitter and emulated loss: a seeded PRNG makes them replayable. */
  random?: () => number;
}

/** A remote client's deadlines (defaults: the replicator's). */
export interface RemoteDeadlines {
  deadlineMs?: number;
  attemptTimeoutMs?: number;
  connectTimeoutMs?: number;
  retryBackoffMaxMs?: number;
}

export class RegionMesh {
  readonly regions: Region[] = [];
  /** "from>to" -> a proxy in front of each node of region `from` (by node order), used by region `to`'s replicator. */
  readonly proxies = new Map<string, NodeProxy[]>();
  /** "from>to" -> the replicator in `to` pulling from `from`, with its remote client. */
  readonly replicators = new Map<string, { replicator: RegionReplicator; remote: TallyClient }>();

  static async start(names: string[], options: TestClusterOptions = {}, layout: RegionMeshOptions = {}): Promise<RegionMesh> {
    const mesh = new RegionMesh();
    try {
      for (const [i, name] of names.entries()) {
        const nodes = layout.nodes?.[i] ?? options.nodes ?? 1;
        const cluster = await TestCluster.start({ shards: 2, ...options, nodes });
        mesh.regions.push({ name, cluster, client: new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 15_000 }) });
      }
      for (const from of mesh.regions) {
        for (const to of mesh.regions) {
          if (from === to) continue;
          const proxies: NodeProxy[] = [];
          mesh.proxies.set(`${from.name}>${to.name}`, proxies);
          for (const node of from.cluster.config.nodes) {
            const [host, port] = node.client.split(":") as [string, string];
            const proxy = new NodeProxy(0, "127.0.0.1", await freePort(), host, Number(port), () => 0, layout.random);
            await proxy.start();
            proxies.push(proxy);
          }
        }
      }
    } catch (error) {
      await mesh.destroy();
      throw error;
    }
    return mesh;
  }

  region(name: string): Region {
    const region = this.regions.find((candidate) => candidate.name === name);
    if (region === undefined) throw new Error(`no region ${name}`);
    return region;
  }

  /** A client of region `from` as region `to`'s replicator sees it: through the proxy. */
  remoteClient(from: string, to: string, deadlines: RemoteDeadlines = {}): TallyClient {
    const origin = this.region(from);
    const through = this.proxies.get(`${from}>${to}`)!.map((proxy) => `127.0.0.1:${proxy.listenPort}`);
    const addressMap = Object.fromEntries(origin.cluster.config.nodes.map((node, i) => [node.client, through[i]!]));
    return new TallyClient({
      endpoints: through,
      addressMap,
      deadlineMs: 5_000,
      attemptTimeoutMs: 2_000,
      connectTimeoutMs: 1_000,
      retryBackoffMaxMs: 500,
      ...deadlines,
    });
  }

  /** Starts the replicator of `from` into `to` (replacing none: call stopReplicator first). */
  startReplicator(from: string, to: string, options: { coalesceMs?: number; routeCheckMs?: number } = {}): RegionReplicator {
    const link = `${from}>${to}`;
    if (this.replicators.has(link)) throw new Error(`replicator ${link} already runs`);
    const remote = this.remoteClient(from, to);
    const replicator = new RegionReplicator({ origin: from, region: to, local: this.region(to).client, remote, ...options });
    replicator.start();
    this.replicators.set(link, { replicator, remote });
    return replicator;
  }

  startAllReplicators(options: { coalesceMs?: number } = {}): void {
    for (const from of this.regions) for (const to of this.regions) if (from !== to) this.startReplicator(from.name, to.name, options);
  }

  async stopReplicator(from: string, to: string): Promise<void> {
    const link = `${from}>${to}`;
    const running = this.replicators.get(link);
    if (running === undefined) return;
    this.replicators.delete(link);
    await running.replicator.stop();
    await running.remote.close();
  }

  /** Cuts (or heals) both directions between two regions. */
  partition(a: string, b: string, cut: boolean): void {
    for (const link of [`${a}>${b}`, `${b}>${a}`]) {
      for (const proxy of this.proxies.get(link)!) {
        if (cut) proxy.cut(0);
        else proxy.heal();
      }
    }
  }

  /** Every proxy's listening port (the ports inter-region traffic crosses). */
  proxyPorts(): number[] {
    return [...this.proxies.values()].flatMap((proxies) => proxies.map((proxy) => proxy.listenPort));
  }

  /** Emulated losses and resets over every proxy (test/support/proxy.ts). */
  lossCounters(): { stalls: number; resets: number } {
    const all = [...this.proxies.values()].flat();
    return { stalls: all.reduce((n, p) => n + p.lossStalls, 0), resets: all.reduce((n, p) => n + p.resets, 0) };
  }

  shapeAll(shape: LinkShape | undefined): void {
    for (const proxies of this.proxies.values()) for (const proxy of proxies) proxy.shape(0, shape);
  }

  /** For a stall: each node's groups (role, commit, applied, last index) and each replicator's cursors. */
  async diagnose(): Promise<string[]> {
    const lines: string[] = [];
    for (const region of this.regions) {
      const status = await region.client.status().catch((error: Error) => error);
      if (status instanceof Error) lines.push(`${region.name}: status failed: ${status.message}`);
      else
        for (const node of status.nodes)
          lines.push(
            `${region.name} node ${node.nodeId}: ` +
              node.groups.map((g) => `g${g.groupId} ${g.role} commit ${g.commit} applied ${g.applied} last ${g.lastIndex}`).join("; "),
          );
    }
    for (const [link, { replicator }] of this.replicators) {
      const shards = replicator.status().shards.map((s) => `shard ${s.shardId} cursor ${s.cursor} last batch at ${s.lastBatchMs}`);
      lines.push(`replicator ${link}: ${shards.join("; ")}`);
    }
    return lines;
  }

  /**
   * Stops replicators and clients (each within a deadline: a close waiting on a call to a region
   * that no longer answers must not hold the teardown), then kills every node by PID.
   */
  async destroy(): Promise<void> {
    const bounded = (promise: Promise<unknown>, what: string) =>
      withDeadline(promise, CLOSE_DEADLINE_MS, `${what} did not close within ${CLOSE_DEADLINE_MS} ms`).catch(() => undefined);
    for (const link of [...this.replicators.keys()]) {
      const [from, to] = link.split(">") as [string, string];
      await bounded(this.stopReplicator(from, to), `replicator ${link}`);
    }
    for (const proxies of this.proxies.values()) for (const proxy of proxies) await bounded(proxy.close(), "a proxy");
    for (const region of this.regions) {
      await bounded(region.client.close(), `region ${region.name}'s client`);
      await region.cluster.destroy();
    }
  }
}
