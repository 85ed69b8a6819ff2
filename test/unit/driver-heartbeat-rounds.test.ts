/**
 * The node's shared heartbeat round (src/raft/tick.ts): the driver loop marks every
 * heartbeatTicks-th of its ticks, for every group alike, so the groups a node leads heartbeat in
 * the same tick and their heartbeats leave in one frame per peer.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { Message, Ready } from "../../src/raft/types.js";
import { DriverLoop } from "../../src/server/core/driver-loop.js";
import type { LogBatch, LoopGroup, LoopStats, RaftGroup } from "../../src/server/core/ports.js";
import { followerGroup } from "../support/loop-group.js";

class TickRecorder implements RaftGroup {
  readonly term = 1;
  holdApply = false;
  readonly ticks: boolean[] = [];
  tick(heartbeatDue?: boolean): void {
    this.ticks.push(heartbeatDue === true);
  }
  step(_message: Message): void {}
  hasReady(): boolean {
    return false;
  }
  ready(): Ready {
    return { entries: [], committedEntries: [], messages: [], readStates: [], mustSync: false };
  }
  advance(): void {}
  persisted(): void {}
}

function group(shardId: number): LoopGroup {
  return followerGroup(shardId, new TickRecorder(), 0);
}

function loopOver(groups: LoopGroup[], heartbeatTicks: number | undefined, now: { ms: number }): DriverLoop<LoopGroup, LogBatch> {
  const stats: LoopStats = { iterations: 0, entriesWritten: 0, syncs: 0, leaderChanges: 0, appliedBytesPerIterationMax: 0 };
  return new DriverLoop<LoopGroup, LogBatch>(
    {
      store: {
        batch: () => ({ size: 0, appendEntries: () => {}, truncateAfter: () => {}, setHardState: () => {} }),
        write: async () => {},
      },
      network: { send: () => {}, flush: () => {} },
      clock: { monotonicMs: () => now.ms, wallClockMs: () => now.ms, setTimer: () => () => {}, yieldNow: async () => {} },
      groups: { changeGroups: async () => {}, all: () => groups, get: (id) => groups.find((g) => g.shardId === id) },
      machines: { installSnapshot: () => {}, apply: () => {} },
    },
    { nodeId: 1, tickMs: 20, heartbeatTicks, logger: pino({ level: "silent" }), stats, leaderAddress: () => undefined },
  );
}

describe("the driver loop's shared heartbeat rounds", () => {
  it("marks every heartbeatTicks-th tick for every group, one tick at a time and in a catch-up", () => {
    const now = { ms: 0 };
    const groups = [group(1), group(2), group(3)];
    const loop = loopOver(groups, 5, now);
    for (let t = 1; t <= 7; t++) {
      now.ms += 20;
      loop.catchUpTicks();
    }
    now.ms += 20 * 6; // six ticks owed at once (a busy loop catching up)
    loop.catchUpTicks();
    const expected = Array.from({ length: 13 }, (_, i) => (i + 1) % 5 === 0);
    for (const g of groups) expect((g.raw as TickRecorder).ticks).toEqual(expected);
  });

  it("marks none without heartbeatTicks (each group keeps its own interval)", () => {
    const now = { ms: 0 };
    const groups = [group(1)];
    const loop = loopOver(groups, undefined, now);
    now.ms += 20 * 12;
    loop.catchUpTicks();
    expect((groups[0]!.raw as TickRecorder).ticks).toEqual(Array(12).fill(false));
  });
});
