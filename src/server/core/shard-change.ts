/**
 * A change the metadata leader's controller asks of a shard's leader (AdminService.ShardChange):
 * a membership step of a move, a leadership transfer, or a split. It runs inside the driver loop
 * (TallyNode.shardChange() passes it to inLoop()) and is conditional on the shard's epoch, so a
 * retried or stale request changes nothing.
 */
import { ConfChangeTransition, ConfChangeType } from "../../raft/types.js";
import { FailedPreconditionError, InvalidArgumentError, WrongShardError } from "../../util/errors.js";
import { encodeSplitEntry } from "../descriptor.js";
import type { ShardChangeRequest } from "../meta-wire.js";
import type { ShardReplica } from "../shard-replica.js";

/** Proposes `request` through `replica` (this node's replica of the shard, which must lead); returns the shard's epoch. */
export function proposeShardChange(
  replica: ShardReplica | undefined,
  request: ShardChangeRequest,
  nodeId: number,
  leaderAddress: (id: number) => string | undefined,
): { epoch: number } {
  if (replica === undefined) throw new WrongShardError(`shard ${request.shardId} has no replica on node ${nodeId}`, request.shardId, 0);
  if (!replica.isLeader) throw replica.notLeaderError(leaderAddress);
  if (replica.descriptor.epoch !== request.expectedEpoch) {
    throw new FailedPreconditionError(
      `shard ${request.shardId} is at epoch ${replica.descriptor.epoch}, the change expected ${request.expectedEpoch}`,
    );
  }
  switch (request.action) {
    case "add-learner":
      replica.raw.proposeConfChange({
        transition: ConfChangeTransition.Auto,
        changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: request.nodeId }],
      });
      break;
    case "promote-and-remove":
      replica.raw.proposeConfChange({
        transition: ConfChangeTransition.JointImplicit,
        changes: [
          { type: ConfChangeType.AddNode, nodeId: request.nodeId },
          { type: ConfChangeType.RemoveNode, nodeId: request.removeId },
        ],
      });
      break;
    case "promote":
      replica.raw.proposeConfChange({
        transition: ConfChangeTransition.Auto,
        changes: [{ type: ConfChangeType.AddNode, nodeId: request.nodeId }],
      });
      break;
    case "remove":
      replica.raw.proposeConfChange({
        transition: ConfChangeTransition.Auto,
        changes: [{ type: ConfChangeType.RemoveNode, nodeId: request.nodeId }],
      });
      break;
    case "transfer-leader":
      replica.raw.transferLeader(request.nodeId);
      break;
    case "split":
      proposeSplit(replica, request.splitSlot, request.newShardId);
      break;
    default:
      throw new InvalidArgumentError(`unknown shard change ${String((request as { action: unknown }).action)}`);
  }
  return { epoch: replica.descriptor.epoch };
}

function proposeSplit(replica: ShardReplica, splitSlot: number, newShardId: number): void {
  const { slotStart, slotEnd } = replica.descriptor;
  if (!(splitSlot > slotStart && splitSlot < slotEnd)) {
    throw new InvalidArgumentError(`split slot ${splitSlot} is not inside shard ${replica.shardId}'s slots ${slotStart}-${slotEnd - 1}`);
  }
  const conf = replica.confState;
  if (conf.votersOutgoing.length > 0 || conf.learners.length > 0 || conf.learnersNext.length > 0) {
    throw new FailedPreconditionError(`shard ${replica.shardId} is changing membership; split it afterwards`);
  }
  replica.raw.propose(encodeSplitEntry({ splitSlot, newShardId, expectedEpoch: replica.descriptor.epoch }));
}

/** The voter (not this node, not a learner) with the highest match index: where a stopping leader hands leadership; 0 when none. */
export function mostCaughtUpVoter(status: ReturnType<ShardReplica["raw"]["status"]>, selfId: number): number {
  let best = 0;
  let bestMatch = -1;
  for (const [id, progress] of status.progress) {
    if (id === selfId || progress.isLearner) continue;
    if (progress.match > bestMatch) {
      best = id;
      bestMatch = progress.match;
    }
  }
  return best;
}
