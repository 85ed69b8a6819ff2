/**
 * Inputs the fuzzer found that broke a node (or that its model misjudged), replayed against a
 * real 3-node cluster. Each names the seed and case that found it (test/fuzz/harness.ts) and the fix.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFrame } from "../../src/transport/codec.js";
import { MessageType, type Message } from "../../src/raft/types.js";
import { TestCluster } from "../support/cluster.js";
import { RawNodeClient } from "../support/raw-client.js";
import { RawBytesClient, peerMethodCodecs, tallyMethodCodecs, type RawOutcome } from "./wire.js";

const FORGED_TERM = 1_000_000_000_000;

function message(type: MessageType, from: number, to: number, term: number): Message {
  return { type, to, from, term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
}

describe("fuzzer regressions on the peer and client ports", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start({ nodes: 3, shards: 1 });
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  async function sendFrame(nodeId: number, fromNode: string, messages: Array<[number, Message]>): Promise<RawOutcome> {
    const raft = peerMethodCodecs().get("Raft")!;
    const client = new RawBytesClient(cluster.config.nodes.find((n) => n.id === nodeId)!.peer);
    try {
      const frame = encodeFrame(messages);
      const { status } = await client.bidi(
        raft.path,
        [raft.encode({ fromNode, payload: Buffer.from(frame.payload), crc32c: frame.crc32c })],
        5000,
      );
      return status;
    } finally {
      client.close();
    }
  }

  async function terms(): Promise<number[]> {
    const result: number[] = [];
    for (const node of cluster.config.nodes) {
      const client = new RawNodeClient(node.client);
      try {
        const status = await client.call("status", { localOnly: true }, 3000);
        for (const group of status.nodes[0].groups) result.push(Number(group.term));
      } finally {
        client.close();
      }
    }
    return result;
  }

  // Seed 1, case 37: a SnapStatus frame reached RawNode.step, which throws on local message
  // types, and the exception stopped node 3's driver loop. Fix: codec.ts refuses local types and
  // term-0 messages (what step would throw on) at decode time.
  it("refuses local message types and messages without a term instead of stopping the node", async () => {
    for (const type of [
      MessageType.SnapStatus,
      MessageType.Hup,
      MessageType.Beat,
      MessageType.Prop,
      MessageType.Unreachable,
      MessageType.CheckQuorum,
    ]) {
      const status = await sendFrame(1, "2", [[1, message(type, 2, 1, 1)]]);
      expect(status.code, MessageType[type]).toBe(grpc.status.DATA_LOSS);
    }
    const status = await sendFrame(1, "2", [[1, message(MessageType.Heartbeat, 2, 1, 0)]]);
    expect(status.code).toBe(grpc.status.DATA_LOSS);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(cluster.processes.has(1)).toBe(true);
    await cluster.waitReady(15_000);
  });

  // Seed 1, case 7722: an App from node 12345 (not in the cluster) at a forged term was stepped,
  // deposing leaders and moving every group to that term. Fix: peer-transport.ts refuses frames
  // and snapshots from ids that are not configured peers.
  it("refuses frames from nodes that are not peers, so a forged term moves nothing", async () => {
    for (const type of [MessageType.App, MessageType.Heartbeat, MessageType.Vote, MessageType.TimeoutNow]) {
      const status = await sendFrame(1, "12345", [[1, message(type, 12345, 1, FORGED_TERM)]]);
      expect(status.code, MessageType[type]).toBe(grpc.status.DATA_LOSS);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const term of await terms()) expect(term).toBeLessThan(FORGED_TERM);
    await cluster.waitReady(15_000);
  });

  // Seed 305467540, case 3096 (a CI run): the fuzzer judged a Pipeline window_at request (a mutated
  // Get) as "without an operation" because its model knew only counters, and the right answer, a
  // windowAt result, as a finding. Fix: test/fuzz/harness.ts knows the kind reads. The input,
  // replayed: its leader answers windowAt, its followers at most NOT_LEADER.
  it("a pipelined window_at read is answered with windowAt", async () => {
    const pipeline = tallyMethodCodecs().get("Pipeline")!;
    const input = Buffer.from("08a3e01352160a05667a3a21800a05667a3a34351000180020012800", "hex");
    expect(pipeline.decodeRequest(input)).toMatchObject({ op: "windowAt" });
    const answers: string[] = [];
    for (const node of cluster.config.nodes) {
      const client = new RawBytesClient(node.client);
      try {
        const { status, responses } = await client.bidi(pipeline.path, [input], 5000);
        expect(status.code, status.details).toBe(grpc.status.OK);
        const response = pipeline.decodeResponse(responses[0]!);
        answers.push(response.result === "error" ? response.error.code : response.result);
      } finally {
        client.close();
      }
    }
    expect(answers).toContain("windowAt");
    for (const answer of answers) expect(["windowAt", "NOT_LEADER"]).toContain(answer);
  });
});
