/**
 * One-call writes from any node (proto RequestHeader.request_id): a sessionless write that reaches
 * a node not leading its shard is forwarded to the leader, as etcd members forward proposals, so a
 * client in any language needs no routing, no session and no leader discovery.
 *
 * The rules, and why:
 *   - The entry node authenticates and authorizes the caller (admission.ts, auth-gate.ts) and validates
 *     the write into a command whose owner is the caller's verified name. The command travels as a
 *     ForwardWriteRequest (proto/tally.proto; forward-codec.ts) over AdminService.ForwardWrite, which
 *     only the cluster's own nodes may call (auth-gate.ts adminAccess): an outside client cannot
 *     name an owner. Without `auth:` every caller is the anonymous owner "" and the leader drops any
 *     owner the request names. The leader validates the command again, as it would a client's.
 *   - One hop: the leader's handler submits or refuses, never forwards again. The entry node sends
 *     to the leader it believes in; only when that node answers NOT_LEADER (the write never entered
 *     its log) does it try the leader that node names, once. A hop is bounded by the request
 *     timeout (the leader's proposal deadline) plus FORWARD_MARGIN_MS.
 *   - Honest answers (docs/errors.md): the leader's own answer is relayed as it is, in the same
 *     class. No known leader is NOT_LEADER before anything was sent (not applied). A transport
 *     failure or a deadline is UNAVAILABLE / AMBIGUOUS (unknown: the write may have reached the
 *     log), and a retry with the same request_id is safe because the shard deduplicates it.
 * Session writes (client_id, seq) are never forwarded: the TypeScript client routes them itself and
 * reads NOT_LEADER as "go to the leader".
 */
import type { ForwardWriteRequestMessage, ForwardWriteResponseInput, ForwardWriteResponseMessage } from "../../api/proto.js";
import { AmbiguousError, NotLeaderError, TallyError, UnavailableError } from "../../util/errors.js";
import type { MutationOutcome, TallyNode } from "../node.js";
import type { ShardReplica } from "../shard-replica.js";
import { forwardedOutcome, forwardedWrite, forwardWriteRequest, forwardWriteResponse, type WriteCommand } from "./forward-codec.js";

/** Beyond the leader's own deadline, how long the entry node waits for its answer. */
const FORWARD_MARGIN_MS = 1_000;

/** Where a write goes: this node's leading replica, or the node believed to lead the shard. */
type Target = { replica: ShardReplica } | { shardId: number; leaderId: number; address: string };

export class WriteForwarder {
  constructor(private readonly node: TallyNode) {}

  /**
   * Applies `command` through the shard's leader: here when this node leads it, else by one
   * forward (and one more after a definite NOT_LEADER naming another leader).
   */
  async write(command: WriteCommand, shardId: number, bytes: number): Promise<MutationOutcome> {
    const keys = command.ops.map((op) => op.key);
    const target = this.target(shardId, command.epoch ?? 0, keys);
    if ("replica" in target) return this.node.submit(target.replica, command, bytes);
    try {
      return await this.forward(target, command);
    } catch (error) {
      if (!(error instanceof NotLeaderError) || error.leaderAddress === undefined) throw error;
      const next = Number(error.leaderId ?? 0);
      if (next === 0 || next === target.leaderId || next === this.node.nodeId) throw error;
      return this.forward({ shardId: target.shardId, leaderId: next, address: error.leaderAddress }, command);
    }
  }

  private target(shardId: number, epoch: number, keys: Uint8Array[]): Target {
    let replica: ShardReplica;
    try {
      replica = this.node.route(shardId, epoch, keys);
    } catch (error) {
      // No replica here: the map's hint (a voter of the shard) is where to go.
      if (!(error instanceof NotLeaderError) || error.leaderId === undefined || error.leaderAddress === undefined) throw error;
      return { shardId: error.shardId, leaderId: Number(error.leaderId), address: error.leaderAddress };
    }
    if (replica.isLeader) return { replica };
    const address = replica.leader === 0 || replica.leader === this.node.nodeId ? undefined : this.node.clientAddressOf(replica.leader);
    if (address === undefined) {
      const error = replica.notLeaderError(this.node.leaderAddress);
      throw new NotLeaderError(
        `${error.message}; the write was not forwarded and not applied`,
        error.leaderId,
        error.leaderAddress,
        error.shardId,
      );
    }
    return { shardId: replica.shardId, leaderId: replica.leader, address };
  }

  private async forward(target: { shardId: number; leaderId: number; address: string }, command: WriteCommand): Promise<MutationOutcome> {
    const timeoutMs = this.node.config.limits.requestTimeoutMs;
    let reply: ForwardWriteResponseMessage;
    try {
      reply = await this.node.adminClients.call<ForwardWriteResponseMessage>(
        target.address,
        "forwardWrite",
        forwardWriteRequest(command, target.shardId, timeoutMs),
        timeoutMs + FORWARD_MARGIN_MS,
      );
    } catch (error) {
      throw explainForwardFailure(error, target);
    }
    return forwardedOutcome(reply, command, target.leaderId);
  }

  /**
   * The leader's side of ForwardWrite: decodes and validates the command (forward-codec.ts), submits
   * it if this node leads the shard (never forwards: NOT_LEADER otherwise), and answers its outcome.
   * `trustOwner`: the cluster authenticates its nodes (auth on), so the owner in the request is a
   * verified name.
   */
  async serve(request: ForwardWriteRequestMessage, trustOwner: boolean): Promise<ForwardWriteResponseInput> {
    const { shardId, epoch, timeoutMs, command } = forwardedWrite(request, trustOwner);
    const replica = this.node.route(
      shardId,
      epoch,
      command.ops.map((op) => op.key),
    );
    const bytes = command.ops.reduce((sum, op) => sum + op.key.length + 40, 64);
    const outcome = await this.node.submit(replica, command, bytes, Math.min(timeoutMs, this.node.config.limits.requestTimeoutMs));
    return forwardWriteResponse(outcome, command.packedAdds !== undefined);
  }
}

/**
 * A forward that got no answer from the leader: the write may have reached its log (the request
 * can be lost after it was sent), so the answer is unknown, never "not applied". A typed answer
 * the leader sent (it carries ErrorInfo) passes through unchanged.
 */
function explainForwardFailure(error: unknown, target: { shardId: number; leaderId: number; address: string }): unknown {
  if (!(error instanceof TallyError)) return error;
  const where = `forwarding to node ${target.leaderId} (${target.address}), the leader of shard ${target.shardId}`;
  const retry = "the write may or may not have applied: retry with the same request_id";
  if (error instanceof UnavailableError && error.cause !== undefined)
    return new UnavailableError(`${where} failed: ${error.message}; ${retry}`, { cause: error });
  if (error.code === "TIMEOUT") return new AmbiguousError(`${where}: no answer before the deadline; ${retry}`, { cause: error });
  return error;
}
