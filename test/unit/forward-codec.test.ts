/**
 * AdminService.ForwardWrite's proto messages (src/server/rpc/forward-codec.ts): a write command and
 * its outcome survive the trip through the real encoder unchanged, the leader validates what it
 * receives, and it keeps the owner only when the cluster authenticates its nodes.
 */
import { describe, expect, test } from "vitest";
import { encodePackedAddsField } from "../../src/api/packed-batch.js";
import {
  tallyProto,
  type ForwardWriteRequestInput,
  type ForwardWriteRequestMessage,
  type ForwardWriteResponseInput,
  type ForwardWriteResponseMessage,
} from "../../src/api/proto.js";
import {
  forwardedOutcome,
  forwardedWrite,
  forwardWriteRequest,
  forwardWriteResponse,
  type WriteCommand,
} from "../../src/server/rpc/forward-codec.js";
import type { MutationOutcome } from "../../src/server/node.js";
import { InvalidArgumentError } from "../../src/util/errors.js";

interface Codec<In, Out> {
  serialize(value: In): Buffer;
  deserialize(bytes: Buffer): Out;
}

function codec<In, Out>(name: string): Codec<In, Out> {
  return tallyProto().packageDefinition[`tally.v1.${name}`] as unknown as Codec<In, Out>;
}

const requests = codec<ForwardWriteRequestInput, ForwardWriteRequestMessage>("ForwardWriteRequest");
const responses = codec<ForwardWriteResponseInput, ForwardWriteResponseMessage>("ForwardWriteResponse");

const wireRequest = (request: ForwardWriteRequestInput) => requests.deserialize(requests.serialize(request));
const wireResponse = (response: ForwardWriteResponseInput) => responses.deserialize(responses.serialize(response));
const key = (text: string) => new Uint8Array(Buffer.from(text));

/** The command as the leader gets it: the same ops, keys compared by their bytes. */
function normalized(command: WriteCommand): unknown {
  return JSON.parse(JSON.stringify(command, (_, value: unknown) => (typeof value === "bigint" ? `${value}n` : value)));
}

const EVERY_KIND: WriteCommand = {
  type: "write",
  requestId: "req-1",
  epoch: 4,
  owner: "alice",
  ops: [
    { kind: "add", key: key("a"), delta: -9_007_199_254_740_993n, floor: 0n, ttlMs: 60_000 },
    { kind: "add", key: key("a2"), delta: 1n },
    { kind: "set", key: key("b"), value: 9_223_372_036_854_775_807n },
    { kind: "reset", key: key("c") },
    { kind: "cas", key: key("d"), expectedVersion: 12, value: -1n },
    { kind: "window", key: key("e"), delta: 5n, eventTimeMs: 1_700_000_000_000, ttlMs: 1000 },
    { kind: "window", key: key("e2"), delta: 5n },
    { kind: "acquire", key: key("f"), n: 2, limit: 10, windowMs: 1000 },
    { kind: "unique", key: key("g"), items: [key("x"), key("y")], ttlMs: 5 },
  ],
};

describe("ForwardWrite requests", () => {
  test("every op kind reaches the leader as the command the entry node validated", () => {
    const served = forwardedWrite(wireRequest(forwardWriteRequest(EVERY_KIND, 3, 2500)), true);
    expect(served).toMatchObject({ shardId: 3, epoch: 4, timeoutMs: 2500 });
    expect(normalized(served.command)).toEqual(normalized(EVERY_KIND));
  });

  test("packed adds travel packed and come back as the same ops and bytes", () => {
    const ops = [
      { key: Buffer.from("p1"), delta: 5n },
      { key: Buffer.from("p2"), delta: -3n },
    ];
    const packedAdds = encodePackedAddsField(ops);
    const command: WriteCommand = {
      type: "write",
      requestId: "req-2",
      ops: ops.map((op) => ({ kind: "add", key: new Uint8Array(op.key), delta: op.delta })),
      packedAdds,
    };
    const request = forwardWriteRequest(command, 1, 1000);
    expect(request.ops).toBeUndefined();
    const served = forwardedWrite(wireRequest(request), false);
    expect(Buffer.from(served.command.packedAdds!)).toEqual(packedAdds);
    expect(served.command.ops.map((op) => [Buffer.from(op.key).toString(), op.kind === "add" ? op.delta : undefined])).toEqual([
      ["p1", 5n],
      ["p2", -3n],
    ]);
    expect(served.command.epoch).toBeUndefined();
  });

  test("the owner is kept only when the cluster authenticates its nodes", () => {
    const request = wireRequest(forwardWriteRequest(EVERY_KIND, 3, 2500));
    expect(forwardedWrite(request, true).command.owner).toBe("alice");
    expect(forwardedWrite(request, false).command.owner).toBeUndefined();
  });

  test("the leader refuses a malformed forward (INVALID_ARGUMENT), whoever sent it", () => {
    const good = forwardWriteRequest(EVERY_KIND, 3, 2500);
    for (const bad of [
      { ...good, shardId: 0 },
      { ...good, timeoutMs: 0 },
      { ...good, ops: [] },
      { ...good, requestId: "" },
      { ...good, ops: [{ add: { key: Buffer.alloc(0), delta: 1 } }] },
      { ...good, packedAdds: encodePackedAddsField([{ key: Buffer.from("k"), delta: 1n }]) },
    ]) {
      expect(() => forwardedWrite(wireRequest(bad), true)).toThrow(InvalidArgumentError);
    }
  });
});

describe("ForwardWrite between nodes of two versions", () => {
  const internal = codec<{ body: Uint8Array }, { body: Buffer }>("InternalRequest");

  test("an older node's msgpack body is refused by a newer leader, not misread", () => {
    const body = Buffer.from("85a7736861726449640101", "hex"); // any msgpack document
    const request = requests.deserialize(internal.serialize({ body }));
    expect(() => forwardedWrite(request, true)).toThrow(/older version/);
  });

  test("a newer node's request carries no body for an older leader (which refuses it)", () => {
    const bytes = requests.serialize(forwardWriteRequest(EVERY_KIND, 3, 2500));
    expect(internal.deserialize(bytes).body).toHaveLength(0);
  });
});

describe("ForwardWrite replies", () => {
  const command = (count: number): WriteCommand => ({ ...EVERY_KIND, ops: EVERY_KIND.ops.slice(0, count) });

  test("applied results, kinds' fields included, come back as the leader had them", () => {
    const outcome: MutationOutcome = {
      term: 7,
      index: 42,
      result: {
        ok: true,
        type: "mutate",
        duplicate: true,
        results: [
          { value: -9_007_199_254_740_993n, version: 42 },
          { value: 3n, version: 40, eventTimeMs: 1_700_000_000_000 },
          { value: 8n, version: 42, allowed: false, retryAfterMs: 250 },
        ],
      },
    };
    const relayed = forwardedOutcome(wireResponse(forwardWriteResponse(outcome, false)), command(3), 2);
    expect(relayed).toEqual({ ...outcome, result: { ...outcome.result, duplicate: false } });
  });

  test("a packed request's results come back packed", () => {
    const outcome: MutationOutcome = {
      term: 1,
      index: 9,
      result: {
        ok: true,
        type: "mutate",
        duplicate: false,
        results: [
          { value: 5n, version: 9 },
          { value: -3n, version: 9 },
        ],
      },
    };
    const reply = forwardWriteResponse(outcome, true);
    expect(reply.results).toBeUndefined();
    expect(forwardedOutcome(wireResponse(reply), command(2), 2)).toEqual(outcome);
  });

  test("a refusal keeps its code, message and details", () => {
    for (const failure of [
      { ok: false as const, code: "VERSION_MISMATCH" as const, message: "ops[1]: version 3, expected 2", opIndex: 1, currentVersion: 3 },
      { ok: false as const, code: "OVERLOADED" as const, message: "request ids full", retryAfterMs: 0 },
      { ok: false as const, code: "WRONG_SHARD" as const, message: "moved", currentEpoch: 5, duplicate: true },
    ]) {
      const outcome: MutationOutcome = { term: 2, index: 11, result: failure };
      expect(forwardedOutcome(wireResponse(forwardWriteResponse(outcome, false)), command(2), 2)).toEqual(outcome);
    }
  });

  test("a reply with the wrong number of results is INTERNAL, not a success", () => {
    const reply = wireResponse({ fence: { term: 1, index: 2 }, results: [{ value: 1, version: 2 }] });
    expect(() => forwardedOutcome(reply, command(2), 2)).toThrow(/1 results/);
  });
});
