/**
 * Eventual adds from the client (src/client/eventual.ts): add() calls share a request while two of
 * theirs are on the way, and leave at once when none is; each caller gets its own answer, and a
 * failed request fails only its own adds.
 */
import { describe, expect, it } from "vitest";
import type { ConnectionPool } from "../../src/client/connection-pool.js";
import { EventualCalls } from "../../src/client/eventual.js";
import { Lifecycle } from "../../src/client/lifecycle.js";
import type { ResolvedOptions } from "../../src/client/options.js";
import type { RetryPolicy } from "../../src/client/retry.js";
import type { Router } from "../../src/client/router.js";
import { TallyError } from "../../src/util/errors.js";
import { countPackedAdds } from "../../src/util/packed-adds.js";

interface Pending {
  adds: number;
  answer: (outcome: unknown) => void;
}

/** A pool whose every EventualAdd waits until the test answers it. */
function pendingPool(): { pool: ConnectionPool; calls: Pending[] } {
  const calls: Pending[] = [];
  const connection = {
    unary: (_service: string, method: string, request: { packedAdds: Uint8Array }) => {
      expect(method).toBe("EventualAdd");
      return new Promise((answer) => calls.push({ adds: countPackedAdds(request.packedAdds), answer }));
    },
  };
  return { pool: { connection: () => connection } as unknown as ConnectionPool, calls };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

function eventualCalls(pool: ConnectionPool, endpoints = ["127.0.0.1:1"]): EventualCalls {
  const life = new Lifecycle({ deadlineMs: 5_000 } as ResolvedOptions);
  const router = { discoveryAddresses: () => [] } as unknown as Router;
  const policy = { backoffMs: () => 1 } as unknown as RetryPolicy;
  return new EventualCalls(life, router, pool, policy, endpoints);
}

/** Nodes that each answer EventualAdd by `answer(address, request)`; every attempt is recorded. */
function nodesPool(answer: (address: string, request: { acceptUnflushable?: boolean }) => unknown): {
  pool: ConnectionPool;
  attempts: Array<{ address: string; accept: boolean }>;
} {
  const attempts: Array<{ address: string; accept: boolean }> = [];
  const pool = {
    connection: (address: string) => ({
      unary: async (_service: string, _method: string, request: { acceptUnflushable?: boolean }) => {
        attempts.push({ address, accept: request.acceptUnflushable === true });
        return answer(address, request);
      },
    }),
  } as unknown as ConnectionPool;
  return { pool, attempts };
}

const cutOff = { kind: "error", error: new TallyError("UNAVAILABLE", "shard 1's leader silent"), info: { reason: "UNAVAILABLE" } };

describe("eventual add() batching", () => {
  it("sends at once when idle, and shares requests while two are on the way", async () => {
    const { pool, calls } = pendingPool();
    const calls$ = eventualCalls(pool);
    const first = calls$.add("a", 1n);
    await turn();
    expect(calls.map((call) => call.adds)).toEqual([1]); // idle: the add left on the next turn, alone
    const second = [calls$.add("b", 1n), calls$.add("c", 2n)];
    await turn();
    expect(calls.map((call) => call.adds)).toEqual([1, 2]); // one more request may leave
    const waiting = Array.from({ length: 50 }, (_, i) => calls$.add(`k${i}`, 1n));
    await turn();
    await turn();
    expect(calls.length).toBe(2); // two on the way: the 50 wait
    calls[0]!.answer({ kind: "reply", response: { accepted: 1, nodeId: 7 } });
    await expect(first).resolves.toEqual({ accepted: 1, nodeId: 7 });
    await turn();
    expect(calls.map((call) => call.adds)).toEqual([1, 2, 50]); // the 50 share one request
    calls[1]!.answer({ kind: "error", error: new TallyError("INVALID_ARGUMENT", "refused"), info: { reason: "x" } });
    for (const add of second) await expect(add).rejects.toThrow(/refused/);
    calls[2]!.answer({ kind: "reply", response: { accepted: 50, nodeId: 7 } });
    for (const add of waiting) await expect(add).resolves.toEqual({ accepted: 1, nodeId: 7 });
  });
});

describe("eventual add() at nodes cut off from a shard's leader", () => {
  const [a, b, c] = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"];

  it("goes to the next node, and tries the refusing node last for a while", async () => {
    const { pool, attempts } = nodesPool((address) => (address === a ? cutOff : { kind: "reply", response: { accepted: 1, nodeId: 2 } }));
    const calls$ = eventualCalls(pool, [a!, b!, c!]);
    await expect(calls$.add("k", 1n)).resolves.toEqual({ accepted: 1, nodeId: 2 });
    expect(attempts).toEqual([
      { address: a, accept: false },
      { address: b, accept: false },
    ]);
    attempts.length = 0;
    await calls$.add("k", 1n);
    expect(attempts).toEqual([{ address: b, accept: false }]); // the home node refused just now
  });

  it("asks to be buffered anyway once every node refused, and never sends it twice", async () => {
    const { pool, attempts } = nodesPool((address, request) =>
      request.acceptUnflushable === true ? { kind: "reply", response: { accepted: 1, nodeId: Number(address.slice(-1)) } } : cutOff,
    );
    const calls$ = eventualCalls(pool, [a!, b!, c!]);
    await expect(calls$.add("k", 1n)).resolves.toEqual({ accepted: 1, nodeId: 1 });
    expect(attempts).toEqual([
      { address: a, accept: false },
      { address: b, accept: false },
      { address: c, accept: false },
      { address: a, accept: true },
    ]);
  });
});
