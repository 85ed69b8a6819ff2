/**
 * Exactly-once sessions as a third-party client sees them, on real tallyd processes with auth on:
 * session ids are random and never meet across shards, a session belongs to the caller that
 * registered it, a seq names one request (a different payload is refused), and NOT_LEADER answers
 * only a write that never entered the log (a write proposed before leadership moved is AMBIGUOUS).
 * Each was a way to lose or double-count an acknowledged add (the raw client speaks the proto).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient } from "../../src/client/index.js";
import { generateToken } from "../../src/util/auth-token.js";
import { TestCluster, type TestToken } from "../support/cluster.js";
import { keyInShard } from "../support/keys.js";
import { leaderClient, RawCallError, RawNodeClient } from "../support/raw-client.js";

const tokens = {
  admin: { name: "ops", token: generateToken(), grants: [{ prefix: "", roles: ["read", "write", "admin"] }] },
  stats: { name: "stats", token: generateToken(), grants: [{ prefix: "stats:", roles: ["read", "write"] }] },
} satisfies Record<string, TestToken>;

const SHARDS = 2;
const header = (shardId: number, clientId: string, seq: number, firstUnackedSeq = seq) => ({
  shardId,
  epoch: "0",
  clientId,
  seq: String(seq),
  firstUnackedSeq: String(firstUnackedSeq),
});
const codeOf = (error: unknown): string => (error instanceof RawCallError ? error.code : `not a RawCallError: ${String(error)}`);

describe("sessions you can trust (real processes, auth on)", () => {
  let cluster: TestCluster;
  let client: TallyClient;
  const raws: RawNodeClient[] = [];
  /** A raw client for the shard's leader, calling with `token` (found with the admin token: status needs admin). */
  const leader = async (shardId: number, token: string): Promise<RawNodeClient> => {
    const found = await leaderClient(cluster.endpoints(), shardId, 15_000, { token: tokens.admin.token });
    raws.push(found);
    if (token === tokens.admin.token) return found;
    const raw = new RawNodeClient(found.address, { token });
    raws.push(raw);
    return raw;
  };
  const value = async (key: string): Promise<bigint> => (await client.get(key, { deadlineMs: 10_000 })).value;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      nodes: 3,
      shards: SHARDS,
      auth: { tokens: Object.values(tokens), readyToken: tokens.admin.token },
      placement: { autoRebalance: false, heartbeatMs: 200, downAfterMs: 10_000 },
      cluster: { sessionsPerCallerMax: 30 },
    });
    client = new TallyClient({ endpoints: cluster.endpoints(), deadlineMs: 10_000, token: tokens.admin.token });
    await client.connect();
  }, 60_000);

  afterAll(async () => {
    for (const raw of raws) raw.close();
    await client?.close();
    await cluster?.destroy();
  });

  it("session ids never repeat across shards; another shard's session is refused there and applies nothing", async () => {
    const one = await leader(1, tokens.admin.token);
    const two = await leader(2, tokens.admin.token);
    // Registered in lockstep: ids drawn from each shard's own log index would come out equal.
    const ids: string[][] = [[], []];
    for (let i = 0; i < 10; i++) {
      ids[0]!.push((await one.call("registerSession", { shardId: 1 })).clientId);
      ids[1]!.push((await two.call("registerSession", { shardId: 2 })).clientId);
    }
    expect(new Set([...ids[0]!, ...ids[1]!]).size).toBe(20);
    // A misrouted add: shard 1's session sent to shard 2.
    const key = keyInShard("misrouted", 2, SHARDS);
    const error = await two.call("add", { header: header(2, ids[0]![0]!, 1), key: Buffer.from(key), delta: "1" }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe("SESSION_EXPIRED");
    expect(await value(key)).toBe(0n);
    // Shard 2's own session applies its seq 1 once, with its own result.
    const own = await two.call("add", { header: header(2, ids[1]![0]!, 1), key: Buffer.from(key), delta: "5" });
    expect(own.value).toBe("5");
    expect(await value(key)).toBe(5n);
  }, 60_000);

  it("a session belongs to its caller: another token can neither read its results nor burn its seqs", async () => {
    // Two keys of one shard: the victim's secret and a key the attacker may write.
    const secret = keyInShard("secret:x", 1, SHARDS);
    const mine = keyInShard("stats:3", 1, SHARDS);
    const victim = await leader(1, tokens.admin.token);
    const attacker = await leader(1, tokens.stats.token);
    const session: string = (await victim.call("registerSession", { shardId: 1 })).clientId;
    await victim.call("add", { header: header(1, session, 1, 1), key: Buffer.from(secret), delta: "100" });
    // The victim's saved result for seq 1 is not handed to the attacker, under any seq.
    const stolen = await attacker
      .call("add", { header: header(1, session, 1, 1), key: Buffer.from(mine), delta: "0" })
      .catch((e: unknown) => e);
    expect(codeOf(stolen)).toBe("PERMISSION_DENIED");
    for (let seq = 2; seq <= 6; seq++) {
      const burned = await attacker
        .call("add", { header: header(1, session, seq, 1), key: Buffer.from(mine), delta: "0" })
        .catch((e: unknown) => e);
      expect(codeOf(burned)).toBe("PERMISSION_DENIED");
    }
    expect(codeOf(await attacker.call("keepAlive", { header: header(1, session, 0, 0) }).catch((e: unknown) => e))).toBe(
      "PERMISSION_DENIED",
    );
    // The victim's next five adds each apply once.
    for (let seq = 2; seq <= 6; seq++) {
      const reply = await victim.call("add", { header: header(1, session, seq, 1), key: Buffer.from(secret), delta: "100" });
      expect(reply.value).toBe(String(100 * seq));
    }
    expect(await value(secret)).toBe(600n);
    expect(await value(mine)).toBe(0n);
  }, 60_000);

  it("one caller holds at most sessionsPerCallerMax sessions per shard: the rest are RESOURCE_EXHAUSTED, and nobody else's session is evicted", async () => {
    const admin = await leader(2, tokens.admin.token);
    const flood = await leader(2, tokens.stats.token);
    const key = keyInShard("quota", 2, SHARDS);
    const victim: string = (await admin.call("registerSession", { shardId: 2 })).clientId;
    let registered = 0;
    let refused: unknown;
    for (let i = 0; i < 40 && refused === undefined; i++) {
      try {
        await flood.call("registerSession", { shardId: 2 });
        registered++;
      } catch (error) {
        refused = error;
      }
    }
    // Earlier tests registered none for this caller on shard 2.
    expect(registered).toBe(30);
    expect(codeOf(refused)).toBe("OVERLOADED");
    expect((refused as RawCallError).grpcCode).toBe(8); // RESOURCE_EXHAUSTED
    expect((refused as Error).message).toContain('caller "stats" holds 30 sessions');
    // The admin's session still works, and the admin can still register.
    expect((await admin.call("add", { header: header(2, victim, 1), key: Buffer.from(key), delta: "1" })).value).toBe("1");
    await admin.call("registerSession", { shardId: 2 });
  }, 60_000);

  it("a seq names one request: a retry with another payload is INVALID_ARGUMENT and changes nothing", async () => {
    const key = keyInShard("digest", 1, SHARDS);
    const raw = await leader(1, tokens.admin.token);
    const session: string = (await raw.call("registerSession", { shardId: 1 })).clientId;
    const first = await raw.call("add", { header: header(1, session, 1), key: Buffer.from(key), delta: "1" });
    const other = await raw.call("add", { header: header(1, session, 1), key: Buffer.from(key), delta: "5" }).catch((e: unknown) => e);
    expect(codeOf(other)).toBe("INVALID_ARGUMENT");
    expect((other as Error).message).toContain("was used for a different request");
    const again = await raw.call("add", { header: header(1, session, 1), key: Buffer.from(key), delta: "1" });
    expect(again.value).toBe(first.value);
    expect(await value(key)).toBe(1n);
  }, 60_000);

  it("NOT_LEADER only for writes that never entered the log: adds in flight when the leader is paused are AMBIGUOUS or applied", async () => {
    // One key per add, so the final value of each says whether that add was applied.
    const raw = await leader(1, tokens.admin.token);
    const session: string = (await raw.call("registerSession", { shardId: 1 })).clientId;
    const pid = cluster.processes.get(Number(await leaderNodeOf(1)))?.pid;
    expect(pid).toBeDefined();
    const answers = new Map<string, string>();
    let seq = 0;
    let sending = true;
    const sender = async (): Promise<void> => {
      while (sending && seq < 900) {
        const mySeq = ++seq;
        const key = keyInShard(`inflight-${mySeq}`, 1, SHARDS);
        try {
          await raw.call("add", { header: header(1, session, mySeq, 1), key: Buffer.from(key), delta: "1" }, 8000);
          answers.set(key, "OK");
        } catch (error) {
          answers.set(key, codeOf(error));
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const senders = Array.from({ length: 24 }, () => sender());
    await new Promise((r) => setTimeout(r, 500));
    // Paused past the election timeout with adds in flight: the others elect a leader and commit
    // what it had replicated; on resume the old leader learns it lost leadership.
    process.kill(pid!, "SIGSTOP");
    await new Promise((r) => setTimeout(r, 3000));
    process.kill(pid!, "SIGCONT");
    await new Promise((r) => setTimeout(r, 1500));
    sending = false;
    await Promise.all(senders);
    const applied = new Map<string, bigint>();
    for (const key of answers.keys()) applied.set(key, await value(key));
    const wrong = [...answers].filter(
      ([key, code]) => (code === "OK" && applied.get(key) !== 1n) || (code === "NOT_LEADER" && applied.get(key) !== 0n),
    );
    const counts = new Map<string, number>();
    for (const code of answers.values()) counts.set(code, (counts.get(code) ?? 0) + 1);
    console.log(`sessions: answers during the pause ${JSON.stringify([...counts])}`);
    expect(wrong.map(([key, code]) => `${key}: answered ${code}, value ${applied.get(key)}`)).toEqual([]);
    expect(counts.get("OK") ?? 0).toBeGreaterThan(0);
  }, 90_000);

  /** The address of the node that leads `shardId` now. */
  async function leaderNodeOf(shardId: number): Promise<string> {
    const raw = await leader(shardId, tokens.admin.token);
    const status = await raw.call("status", { localOnly: true }, 2000);
    return String(status.nodes[0].nodeId);
  }
});
