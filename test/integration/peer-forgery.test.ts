/**
 * The peer port without TLS, attacked the way the security report did it: a 3-node cluster with
 * `auth:` on and no `tls:`; the attacker holds no token. It reads the Raft term, leader and last
 * index of the shard from the unauthenticated /metrics, then connects to each follower's peer port
 * and sends an App frame in the leader's name, one term higher, carrying an entry that registers a
 * session and sets a key, with a commit index covering it. The key must not change on any node,
 * the peer port must refuse the stream as unauthenticated, and /metrics must count the refusal.
 *
 * Every node applies everything up to a later legitimate write before its value is read, so a
 * forged entry that had been committed would show.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tallyProto } from "../../src/api/proto.js";
import { TallyClient } from "../../src/client/index.js";
import { EntryType, type Message, MessageType } from "../../src/raft/types.js";
import { encodeEntry, sessionClientId } from "../../src/shard/commands.js";
import { encodeFrame } from "../../src/transport/codec.js";
import { peerService } from "../../src/transport/peer-proto.js";
import { generateToken } from "../../src/util/auth-token.js";
import { eventually, TestCluster, type TestToken } from "../support/cluster.js";

const admin = { name: "ops", token: generateToken(), grants: [{ prefix: "", roles: ["read", "write", "admin"] }] } satisfies TestToken;
const KEY = "secret:raft";
const SHARD = 1;

interface GroupView {
  term: number;
  isLeader: boolean;
  lastIndex: number;
  commit: number;
}

/** What anyone who reaches the operations port reads, without credentials. */
async function scrapeGroup(url: string, group: number): Promise<GroupView> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const sample = (name: string): number => {
    const row = text.split("\n").find((line) => line.startsWith(`${name}{`) && line.includes(`group="${group}"`));
    if (row === undefined) throw new Error(`no ${name} for group ${group}`);
    return Number(row.slice(row.lastIndexOf(" ") + 1));
  };
  return {
    term: sample("tally_raft_term"),
    isLeader: sample("tally_raft_is_leader") === 1,
    lastIndex: sample("tally_raft_last_index"),
    commit: sample("tally_raft_commit_index"),
  };
}

/** Opens a Raft stream to `peerAddress`, writes one frame, and reports how the stream ended (or "open" after `openMs`). */
async function sendForgedFrame(
  peerAddress: string,
  fromNode: number,
  message: Message,
  openMs: number,
): Promise<grpc.StatusObject | "open"> {
  const client = new (peerService().Client)(peerAddress, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  const stream = client.Raft(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
  try {
    return await new Promise<grpc.StatusObject | "open">((resolve) => {
      const timer = setTimeout(() => resolve("open"), openMs);
      stream.on("error", () => undefined);
      stream.on("data", () => undefined);
      stream.on("status", (status: grpc.StatusObject) => {
        clearTimeout(timer);
        resolve(status);
      });
      const frame = encodeFrame([[SHARD, message]]);
      stream.write({ fromNode: String(fromNode), payload: frame.payload, crc32c: frame.crc32c });
    });
  } finally {
    stream.cancel();
    client.close();
  }
}

/** One node's own applied value of `key` (STALE read from that replica, once it applied minIndex). */
async function replicaValue(address: string, key: string, minIndex: bigint): Promise<bigint> {
  const stub = new (tallyProto().CounterService)(address, grpc.credentials.createInsecure()) as unknown as {
    get(
      request: object,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      callback: (error: grpc.ServiceError | null, response: { value: unknown }) => void,
    ): void;
    close(): void;
  };
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${admin.token}`);
  try {
    const response = await new Promise<{ value: unknown }>((resolve, reject) =>
      stub.get(
        { key: Buffer.from(key), consistency: "STALE", minIndex: minIndex.toString(), shardId: SHARD },
        metadata,
        { deadline: Date.now() + 5_000 },
        (error, reply) => (error ? reject(error) : resolve(reply)),
      ),
    );
    return BigInt(String(response.value));
  } finally {
    stub.close();
  }
}

describe("peer port without TLS, auth on", () => {
  let cluster: TestCluster;
  let client: TallyClient | undefined;

  beforeAll(async () => {
    cluster = await TestCluster.start({ nodes: 3, shards: 1, metrics: true, auth: { tokens: [admin], readyToken: admin.token } });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await cluster?.destroy();
  });

  function adminClient(): TallyClient {
    client ??= new TallyClient({
      endpoints: cluster.endpoints(),
      deadlineMs: 15_000,
      attemptTimeoutMs: 2_000,
      connectTimeoutMs: 1_000,
      token: admin.token,
    });
    return client;
  }

  it("a forged App in the leader's name, built from /metrics, is refused and changes no key on any node", async () => {
    await adminClient().set(KEY, 1n);
    // The attacker waits for a quiet shard: every replica holds the whole log and has committed it.
    const views = await eventually(
      async () => {
        const seen = await Promise.all(
          cluster.config.nodes.map(async (node) => ({ id: node.id, ...(await scrapeGroup(cluster.opsUrl(node.id), SHARD)) })),
        );
        const leaders = seen.filter((view) => view.isLeader);
        const settled =
          leaders.length === 1 &&
          seen.every(
            (view) => view.term === leaders[0]!.term && view.lastIndex === leaders[0]!.lastIndex && view.commit === view.lastIndex,
          );
        return settled ? seen : undefined;
      },
      10_000,
      "a settled shard in /metrics",
    );
    const leader = views.find((view) => view.isLeader)!;
    const { term, lastIndex } = leader;
    const forgedIndex = lastIndex + 1;
    const clientId = sessionClientId(forgedIndex, 0);
    const data = encodeEntry({
      timestampMs: Date.now(),
      commands: [
        { type: "register" },
        { type: "mutate", clientId, seq: 1, firstUnackedSeq: 1, ops: [{ kind: "set", key: new TextEncoder().encode(KEY), value: 1337n }] },
      ],
    });

    const outcomes = [];
    for (const follower of views.filter((view) => !view.isLeader)) {
      const forged: Message = {
        type: MessageType.App,
        from: leader.id,
        to: follower.id,
        term: term + 1,
        logTerm: term,
        index: lastIndex,
        entries: [{ term: term + 1, index: forgedIndex, type: EntryType.Normal, data }],
        commit: forgedIndex,
        reject: false,
        rejectHint: 0,
      };
      outcomes.push(await sendForgedFrame(cluster.config.nodes.find((n) => n.id === follower.id)!.peer, leader.id, forged, 1_000));
    }

    // A legitimate write after the attack; every replica then applies at least up to it.
    const probe = await adminClient().add("probe:after-attack", 1n);
    const values = [];
    for (const node of cluster.config.nodes) values.push(await replicaValue(node.client, KEY, probe.version));
    expect(values, `each node's own value of ${KEY}`).toEqual(cluster.config.nodes.map(() => 1n));
    expect((await adminClient().get(KEY)).value).toBe(1n);
    for (const outcome of outcomes) {
      expect(outcome).not.toBe("open");
      expect((outcome as grpc.StatusObject).code).toBe(grpc.status.UNAUTHENTICATED);
    }
    // The refusals are visible to operators.
    for (const follower of views.filter((view) => !view.isLeader))
      expect(await cluster.metric(follower.id, "tally_peer_unauthenticated_total")).toBeGreaterThanOrEqual(1);
    cluster.assertNoUnexpectedExit();
  });
});
