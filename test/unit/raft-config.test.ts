/** RaftConfig validation at construction (etcd Config.validate). */
import { describe, expect, it } from "vitest";
import { MemoryStorage, type RaftConfig, RawNode } from "../../src/raft/index.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { makeConfig } from "./raft-harness.js";

function base(): RaftConfig {
  const s = new MemoryStorage();
  RawNode.bootstrap(s, [1, 2, 3]);
  return makeConfig(1, s, 1);
}

describe("config validation", () => {
  it("accepts the defaults", () => {
    expect(() => new RawNode(base())).not.toThrow();
  });

  const bad: [string, Partial<RaftConfig>, RegExp][] = [
    ["id 0", { id: 0 }, /id must be a positive integer/],
    ["heartbeat 0", { heartbeatTicks: 0 }, /heartbeatTicks must be >= 1/],
    ["election <= heartbeat", { electionTicks: 3, heartbeatTicks: 3 }, /electionTicks \(3\) must be greater than heartbeatTicks \(3\)/],
    ["inflight messages 0", { maxInflightMessages: 0 }, /maxInflightMessages must be >= 1/],
    ["inflight bytes negative", { maxInflightBytes: -1 }, /maxInflightBytes must be >= 0/],
    [
      "inflight bytes below message size",
      { maxSizePerMsg: 1000, maxInflightBytes: 500 },
      /maxInflightBytes \(500\) must be 0 or >= maxSizePerMsg \(1000\)/,
    ],
    ["max size per msg 0", { maxSizePerMsg: 0 }, /maxSizePerMsg must be >= 1/],
    ["uncommitted 0", { maxUncommittedEntriesBytes: 0 }, /maxUncommittedEntriesBytes must be >= 1/],
    ["committed per ready 0", { maxCommittedSizePerReady: 0 }, /maxCommittedSizePerReady must be >= 1/],
    [
      "lease drift >= election",
      { checkQuorum: true, leaseDriftTicks: 10 },
      /leaseDriftTicks \(10\) must be less than electionTicks \(10\)/,
    ],
    ["lease without checkQuorum", { checkQuorum: false, leaseDriftTicks: 2 }, /require checkQuorum/],
    ["fractional ticks", { electionTicks: 10.5 }, /electionTicks/],
    ["negative applied", { applied: -1 }, /applied must be a non-negative integer/],
  ];
  for (const [name, patch, message] of bad) {
    it(`rejects ${name}`, () => {
      let err: unknown;
      try {
        new RawNode({ ...base(), ...patch });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(/^raft config: /);
      expect((err as Error).message).toMatch(message);
    });
  }

  it("rejects an applied index beyond the commit index", () => {
    expect(() => new RawNode({ ...base(), applied: 5 })).toThrow(/beyond the commit index/);
  });
});
