/** A follower LoopGroup around a scripted Raft group, for driver-loop unit tests (no state machine, no requests). */
import { Role } from "../../src/raft/types.js";
import type { LoopGroup, RaftGroup } from "../../src/server/core/ports.js";
import { NotLeaderError } from "../../src/util/errors.js";

export function followerGroup(shardId: number, raw: RaftGroup, lastIndex: number): LoopGroup {
  return {
    shardId,
    raw,
    storage: { lastIndex: () => lastIndex, append: () => {}, setHardState: () => {} },
    role: Role.Follower,
    leader: 0,
    isLeader: false,
    notLeaderError: () => new NotLeaderError("not leader", undefined, undefined, shardId),
    expire: () => {},
    proposeQueued: () => {},
    issueReadIndex: () => {},
    completeApplied: () => {},
    onReadState: () => {},
    serveAppliedReads: () => {},
    failInflight: () => {},
  };
}
