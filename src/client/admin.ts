/**
 * Operator calls (tallyctl): AdminService.Status from the first node that answers, any
 * AdminService method with NOT_LEADER hints followed to the metadata leader, and server-streaming
 * admin calls on one node.
 */
import { decodeServiceError } from "../api/error-details.js";
import type { StatusRequestInput, StatusResponseMessage } from "../api/proto.js";
import { monotonicMs } from "../util/clock.js";
import { nodeAnswered, type ConnectionPool } from "./connection-pool.js";
import { ClusterUnreachableError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ResolvedOptions } from "./options.js";
import type { Router } from "./router.js";
import type { CallOptions, ClusterStatus } from "./types.js";
import { wireBigInt } from "./values.js";

export class AdminCalls {
  constructor(
    private readonly options: ResolvedOptions,
    private readonly life: Lifecycle,
    private readonly router: Router,
    private readonly pool: ConnectionPool,
  ) {}

  /** AdminService.Status from the first node that answers. */
  async status(options: CallOptions = {}): Promise<ClusterStatus> {
    this.life.checkOpen();
    const deadlineAtMs = this.life.deadlineFor(options);
    let lastError: unknown;
    let answered = false;
    for (const address of this.router.discoveryAddresses()) {
      if (options.signal?.aborted) throw options.signal.reason;
      const remainingMs = deadlineAtMs - monotonicMs();
      if (remainingMs <= 0) break;
      const outcome = await this.pool
        .connection(address)
        .unary<StatusRequestInput, StatusResponseMessage>(
          "admin",
          "Status",
          {},
          monotonicMs() + Math.min(remainingMs, this.options.attemptTimeoutMs),
        );
      if (outcome.kind === "reply") return statusFromMessage(address, outcome.response);
      lastError = outcome.error;
      if (nodeAnswered(outcome.error, outcome.info)) answered = true;
    }
    if (answered) throw lastError;
    throw new ClusterUnreachableError(this.router.discoveryAddresses(), { cause: lastError });
  }

  /**
   * One AdminService call for operators (tallyctl): tries the nodes in turn and follows NOT_LEADER
   * hints, so membership and placement requests reach the metadata leader. `method` is the RPC name
   * ("ClusterMap", "NodeState", "ShardMove", ...); the reply is the decoded response message.
   */
  async admin<Response = Record<string, unknown>>(
    method: string,
    request: object,
    options: CallOptions & { address?: string } = {},
  ): Promise<Response> {
    this.life.checkOpen();
    const deadlineAtMs = this.life.deadlineFor(options);
    const queue = options.address !== undefined ? [options.address] : [...this.router.discoveryAddresses()];
    // Each address at most twice: a NOT_LEADER hint may name a node asked before the election settled.
    const attempts = new Map<string, number>();
    let lastError: unknown;
    let answered = false;
    while (queue.length > 0) {
      const address = queue.shift()!;
      const attempt = (attempts.get(address) ?? 0) + 1;
      if (attempt > 2) continue;
      attempts.set(address, attempt);
      const remainingMs = deadlineAtMs - monotonicMs();
      if (remainingMs <= 0) break;
      const outcome = await this.pool
        .connection(address)
        .unary<object, Response>("admin", method, request, monotonicMs() + Math.min(remainingMs, this.options.attemptTimeoutMs));
      if (outcome.kind === "reply") return outcome.response;
      lastError = outcome.error;
      if (nodeAnswered(outcome.error, outcome.info)) answered = true;
      // A node that cannot be reached did not take the request: ask the next one (tallyctl failover,
      // rebalance, status run while a node is down). A timeout is thrown: the call may have arrived.
      else if (options.address === undefined && outcome.error.code === "UNAVAILABLE") continue;
      if (outcome.error.code !== "NOT_LEADER") throw outcome.error;
      const hint = outcome.info?.leaderAddress;
      if (hint && hint !== address) {
        queue.unshift(hint);
      } else if (options.address === undefined && queue.length === 0 && monotonicMs() < deadlineAtMs - 300) {
        // No leader known yet (an election): wait a little and go round again.
        await new Promise((resolve) => setTimeout(resolve, 250));
        queue.push(...this.router.discoveryAddresses());
      }
    }
    if (answered) throw lastError;
    throw new ClusterUnreachableError(this.router.discoveryAddresses(), { cause: lastError });
  }

  /**
   * A server-streaming AdminService call on one node (tallyctl backup: "ShardBackup"). Yields the
   * messages in order; a failure is thrown as the typed error the server sent (a NOT_LEADER names
   * the leader's address), or UNAVAILABLE when the node cannot be reached. Breaking out of the
   * loop cancels the call.
   */
  async *adminStream<Response>(method: string, request: object, address: string): AsyncGenerator<Response> {
    this.life.checkOpen();
    const stream = this.pool.connection(address).serverStream<object, Response>(method, request, "admin");
    try {
      for await (const message of stream as AsyncIterable<Response>) yield message;
    } catch (error) {
      throw decodeServiceError(error).error;
    } finally {
      stream.cancel();
    }
  }
}

function statusFromMessage(answeredBy: string, message: StatusResponseMessage): ClusterStatus {
  return {
    answeredBy,
    nodes: message.nodes.map((node) => ({
      nodeId: node.nodeId,
      clientAddress: node.clientAddress,
      zone: node.zone,
      host: node.host || node.nodeId,
      reachable: node.reachable,
      error: node.error,
      groups: node.groups.map((group) => ({
        groupId: group.groupId,
        role: group.role,
        term: wireBigInt(group.term),
        leaderId: group.leaderId,
        commit: wireBigInt(group.commit),
        applied: wireBigInt(group.applied),
        lastIndex: wireBigInt(group.lastIndex),
        leaseValid: group.leaseValid,
        epoch: wireBigInt(group.epoch),
        peers: group.peers.map((peer) => ({
          nodeId: peer.nodeId,
          match: wireBigInt(peer.match),
          lag: wireBigInt(peer.lag),
          state: peer.state,
        })),
      })),
    })),
  };
}
