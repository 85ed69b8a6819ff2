/**
 * The placement controller. It runs on the metadata leader only (TiKV's PD leader, CockroachDB's
 * allocator), driven by the leader's own heartbeat timer:
 *   - it keeps soft state from heartbeats: who is alive, which node leads which shard, each
 *     leader's view of its shard (epoch, replica set, followers' match indexes), load;
 *   - it mirrors shard descriptors into the map when a leader reports a newer epoch, admits nodes
 *     that heartbeat but are not in the map, and marks nodes down (and up again);
 *   - it drives replica moves one idempotent step at a time and starts new ones from the planner.
 *
 * A move is a sequence of Raft membership changes on the shard (add learner; once caught up, one
 * joint change that promotes it and removes the old replica, left automatically), with leadership
 * transferred away from the replica being removed first. Each step looks at the shard as its leader
 * reports it now and asks for the next change conditional on the shard's epoch, so a step repeated
 * after a crash, a lost reply or a new controller changes nothing twice: the move resumes where the
 * shard actually is. A learner that does not catch up (its node died, or the catch-up timeout
 * passed) is removed again and the move ends "aborted". The shard is never half-moved: every
 * intermediate configuration has a full quorum of the old replicas.
 */
import {
  describeOperation,
  hostOf,
  hostOfId,
  nodeById,
  shardById,
  shardMembers,
  type ClusterMap,
  type MetaCommand,
  type OperationRecord,
} from "../meta/map.js";
import { planAll, planOneMove, planTransfers, type Plan, type PlacementView } from "../meta/placement.js";
import { computePlacement } from "./config/config.js";
import { ConfChangeTransition, ConfChangeType } from "../raft/types.js";
import type { NodeReport, ShardChangeAction, ShardReport } from "./meta-wire.js";
import type { ControllerHost } from "./core/controller-host.js";
import { monotonicMs, wallClockMs } from "../util/clock.js";
import { FailedPreconditionError, InvalidArgumentError, TallyError } from "../util/errors.js";
import type { Logger } from "../util/log.js";

/** A learner within this many entries of the leader's commit index counts as caught up. */
const CAUGHT_UP_LAG_MAX = 64;

/**
 * Caught up: the learner has acknowledged entries (match 0 means nothing yet -- with a short log,
 * "commit - 0 <= lag" would promote a learner that never answered, even a dead one, and the new
 * configuration would lose its quorum) and is within CAUGHT_UP_LAG_MAX of the commit index.
 */
function isCaughtUp(match: number, commit: number): boolean {
  return match > 0 && commit - match <= CAUGHT_UP_LAG_MAX;
}

interface LeaderReport {
  atMs: number;
  nodeId: number;
  shard: ShardReport;
}

export class MetaController {
  private readonly lastSeen = new Map<number, number>();
  private readonly nodeReports = new Map<number, NodeReport>();
  private readonly leaderReports = new Map<number, LeaderReport>();
  private readonly lastTransferMs = new Map<number, number>();
  /** When each shard's leader was last seen to change (an election, an operator's transfer). */
  private readonly leaderChangedMs = new Map<number, number>();
  private readonly stepShown = new Map<number, string>();
  private readonly hotSinceMs = new Map<number, number>();
  private leaderSinceMs = 0;
  private lastTickMs = 0;
  private ticking = false;

  constructor(
    private readonly node: ControllerHost,
    private readonly log: Logger,
  ) {}

  private get map(): ClusterMap {
    return this.node.meta!.machine.map as ClusterMap;
  }

  private get settings() {
    return this.node.config.placement;
  }

  onHeartbeat(report: NodeReport): void {
    const now = monotonicMs();
    this.lastSeen.set(report.node.id, now);
    this.nodeReports.set(report.node.id, report);
    for (const shard of report.shards) {
      const known = this.leaderReports.get(shard.id);
      // The leader's report wins; among leaders, the higher term.
      if (shard.isLeader && (known === undefined || known.shard.term <= shard.term || known.nodeId === report.node.id)) {
        if (known !== undefined && known.nodeId !== report.node.id) this.leaderChangedMs.set(shard.id, now);
        this.leaderReports.set(shard.id, { atMs: now, nodeId: report.node.id, shard });
      } else if (known !== undefined && known.nodeId === report.node.id && !shard.isLeader) {
        this.leaderReports.delete(shard.id);
      }
    }
  }

  isAlive(nodeId: number): boolean {
    if (nodeId === this.node.nodeId) return true;
    const seen = this.lastSeen.get(nodeId);
    return seen !== undefined && monotonicMs() - seen <= Math.max(1500, this.settings.heartbeatMs * 5);
  }

  /**
   * Hot counters whose newly declared sub-counters writers may now use: every live node has
   * reported a map at least as new as the declaration, so whichever of them serves a read of the
   * key sums the new sub-counters (it refuses a read that names the old count). A node silent
   * now gets the map with its first heartbeat reply. A new leader first hears every live node
   * (it knows no one's map version yet, and must not take silence for agreement).
   */
  private hotActivations(): MetaCommand[] {
    const commands: MetaCommand[] = [];
    if (monotonicMs() - this.leaderSinceMs < this.settings.heartbeatMs * 5) return commands;
    for (const record of this.map.hot ?? []) {
      if (record.writable >= record.tags.length) continue;
      const behind = this.map.nodes.some(
        (node) =>
          node.state !== "removed" &&
          node.id !== this.node.nodeId &&
          this.isAlive(node.id) &&
          (this.nodeReports.get(node.id)?.mapVersion ?? 0) < record.declaredVersion,
      );
      if (!behind) commands.push({ type: "hot-activate", key: record.key, writable: record.tags.length });
    }
    return commands;
  }

  /** How long a node has been silent, counted from this controller's leadership at the earliest. */
  silentMs(nodeId: number): number {
    if (nodeId === this.node.nodeId) return 0;
    return monotonicMs() - Math.max(this.lastSeen.get(nodeId) ?? 0, this.leaderSinceMs);
  }

  lastSeenAgoMs(nodeId: number): number | undefined {
    if (nodeId === this.node.nodeId) return 0;
    const seen = this.lastSeen.get(nodeId);
    return seen === undefined ? undefined : monotonicMs() - seen;
  }

  /** Shard -> leader node, from reports no older than a few heartbeats. */
  leaders(): Map<number, number> {
    const result = new Map<number, number>();
    const now = monotonicMs();
    for (const [shardId, report] of this.leaderReports) {
      if (now - report.atMs <= this.settings.heartbeatMs * 10) result.set(shardId, report.nodeId);
    }
    return result;
  }

  shardLoad(shardId: number): number {
    return this.leaderReports.get(shardId)?.shard.opsPerSecond ?? 0;
  }

  view(): PlacementView {
    const alive = new Set<number>();
    for (const node of this.map.nodes) if (this.isAlive(node.id)) alive.add(node.id);
    const busyShards = new Set(this.map.operations.filter((op) => op.state === "running").map((op) => op.shardId));
    const load = new Map<number, number>();
    for (const [shardId, report] of this.leaderReports) load.set(shardId, report.shard.opsPerSecond);
    return { alive, leaders: this.leaders(), busyShards, load };
  }

  /** One controller round; rounds never overlap. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.round();
    } catch (error) {
      this.log.debug({ err: error }, "controller round failed");
    } finally {
      this.ticking = false;
    }
  }

  private async round(): Promise<void> {
    const now = monotonicMs();
    const gapMs = now - this.lastTickMs;
    if (gapMs > Math.max(this.settings.heartbeatMs * 5, 2000)) {
      // New leadership (or a long pause): liveness must be learned afresh before acting on it.
      this.leaderSinceMs = now;
      if (gapMs > this.settings.downAfterMs) {
        this.lastSeen.clear();
        this.leaderReports.clear();
      }
    }
    this.lastTickMs = now;
    if (!this.map.initialized) {
      await this.node.submitMeta([this.initCommand()]);
      return;
    }
    const commands: MetaCommand[] = [];
    // The metadata group's own membership, as this leader applied it.
    const conf = this.node.meta!.confState;
    const metaNow = {
      voters: [...conf.voters].sort((a, b) => a - b),
      learners: [...conf.learners, ...conf.learnersNext].sort((a, b) => a - b),
      votersOutgoing: [...conf.votersOutgoing].sort((a, b) => a - b),
    };
    if (JSON.stringify(metaNow) !== JSON.stringify(this.map.meta)) commands.push({ type: "meta-report", ...metaNow });
    // Mirror newer shard descriptors into the map.
    for (const report of this.leaderReports.values()) {
      const record = shardById(this.map, report.shard.id);
      if (record !== undefined && report.shard.epoch > record.epoch) {
        const { id, epoch, slotStart, slotEnd, voters, learners, votersOutgoing } = report.shard;
        commands.push({ type: "shard-report", shard: { id, epoch, slotStart, slotEnd, voters, learners, votersOutgoing } });
      }
    }
    // Nodes that heartbeat but are not in the map join it (a node added to cluster.yaml and started).
    for (const report of this.nodeReports.values()) {
      if (nodeById(this.map, report.node.id) === undefined) commands.push({ type: "node-add", node: report.node });
    }
    // Liveness: down after downAfterMs of silence (counted from our own leadership at the earliest).
    for (const node of this.map.nodes) {
      if (node.id === this.node.nodeId) continue;
      const silentMs = this.silentMs(node.id);
      if (node.state === "up" && silentMs > this.settings.downAfterMs)
        commands.push({ type: "node-state", nodeId: node.id, state: "down" });
      if (node.state === "down" && this.isAlive(node.id)) commands.push({ type: "node-state", nodeId: node.id, state: "up" });
    }
    commands.push(...this.hotActivations());
    if (commands.length > 0) {
      const results = await this.node.submitMeta(commands);
      results.forEach((result, i) => {
        if (result.ok && result.changed)
          this.log.info({ command: commands[i]!.type, detail: describeCommand(commands[i]!) }, "map updated");
      });
    }

    await this.driveMetaMembership();
    const running = this.map.operations.filter((op) => op.state === "running").sort((a, b) => a.id - b.id);
    for (const op of running.filter((candidate) => candidate.kind === "split")) await this.driveSplit(op);
    for (const op of running.filter((candidate) => candidate.kind === "move").slice(0, this.settings.maxConcurrentMoves))
      await this.driveMove(op);

    if (!this.settings.autoRebalance) return;
    if (now - this.leaderSinceMs < this.settings.heartbeatMs * 5) return; // learn the cluster first
    await this.maybeSplitHotShard(running);
    if (running.length < this.settings.maxConcurrentMoves) {
      const move = planOneMove(this.map, this.view());
      if (move !== undefined) {
        const [result] = await this.node.submitMeta([
          { type: "op-start", op: { kind: "move", shardId: move.shardId, from: move.from, to: move.to, reason: move.reason } },
        ]);
        if (result?.ok) this.log.info({ ...move, op: result.opId }, "move started");
      }
    }
    // Leaders settle after start-up elections; balancing them earlier only adds churn.
    if (now - this.leaderSinceMs < Math.max(this.settings.leaderTransferCooldownMs, this.settings.heartbeatMs * 10)) return;
    const view = this.view();
    // A leadership that just changed is left where it went for a cooldown, unless it must leave its
    // node: balancing at once would undo an operator's `tallyctl leader transfer` before anyone saw it.
    const cooled = (shardId: number, since: Map<number, number>) =>
      now - (since.get(shardId) ?? -Infinity) >= this.settings.leaderTransferCooldownMs;
    // Urgent transfers go first in the plan. Balancing transfers come as chains whose far end is
    // first; the next step runs only once the one before it has happened and cooled, so a balancing
    // transfer waits while an earlier planned one is cooling rather than jumping ahead of it.
    const plan = planTransfers(this.map, view, this.map.shards.length);
    const first = plan.find((transfer) => transfer.urgent !== true || cooled(transfer.shardId, this.lastTransferMs));
    const ready =
      first !== undefined &&
      cooled(first.shardId, this.lastTransferMs) &&
      (first.urgent === true || cooled(first.shardId, this.leaderChangedMs));
    if (ready) await this.transfer(first.shardId, first.from, first.to, first.reason);
  }

  private initCommand(): MetaCommand {
    const config = this.node.config;
    return {
      type: "init",
      clusterName: config.cluster.name,
      replicationFactor: config.cluster.replicationFactor,
      nodes: config.nodes.map((node) => ({ id: node.id, client: node.client, peer: node.peer, zone: node.zone, host: node.host })),
      metaVoters: [...this.node.meta!.confState.voters],
      shards: computePlacement(config).map((placement) => ({
        id: placement.shardId,
        slotStart: placement.slots.start,
        slotEnd: placement.slots.end,
        epoch: placement.epoch,
        voters: placement.replicas,
        learners: [],
        votersOutgoing: [],
      })),
    };
  }

  private async transfer(shardId: number, from: number, to: number, reason: string): Promise<void> {
    this.lastTransferMs.set(shardId, monotonicMs());
    const report = this.leaderReports.get(shardId);
    if (report === undefined || report.nodeId !== from) return;
    try {
      await this.shardChange(report, { action: "transfer-leader", nodeId: to });
      this.log.info({ shard: shardId, from, to, reason }, "leader transfer");
    } catch (error) {
      this.log.debug({ err: error, shard: shardId }, "leader transfer refused");
    }
  }

  private async shardChange(report: LeaderReport, change: ShardChangeAction): Promise<void> {
    const request = { ...change, shardId: report.shard.id, expectedEpoch: report.shard.epoch };
    if (report.nodeId === this.node.nodeId) {
      await this.node.shardChange(request);
      return;
    }
    const address = this.node.clientAddressOf(report.nodeId);
    if (address === undefined) throw new FailedPreconditionError(`node ${report.nodeId} has no known address`);
    await this.node.adminClients.internal(address, "shardChange", request, 3000);
  }

  private async setStep(op: OperationRecord, step: string, state: OperationRecord["state"] = "running"): Promise<void> {
    if (state === "running" && this.stepShown.get(op.id) === step && op.step === step) return;
    this.stepShown.set(op.id, step);
    await this.node.submitMeta([{ type: "op-update", id: op.id, state, step }]);
    if (state !== "running") this.log.info({ op: op.id, state, step, move: describeOperation(op) }, "operation finished");
  }

  /** The replica leaving leads the shard: hand leadership to a live voter first. */
  private async moveLeadershipAway(op: OperationRecord, report: LeaderReport): Promise<void> {
    const to = report.shard.voters.find((id) => id !== op.from && this.isAlive(id));
    if (to === undefined) return this.setStep(op, "no live voter to take leadership");
    await this.shardChange(report, { action: "transfer-leader", nodeId: to });
    await this.setStep(op, `moving leadership from node ${op.from} to node ${to}`);
  }

  /** One idempotent step of a move, from the shard as its leader reports it now. */
  private async driveMove(op: OperationRecord): Promise<void> {
    const report = this.leaderReports.get(op.shardId);
    const now = monotonicMs();
    if (report === undefined || now - report.atMs > this.settings.heartbeatMs * 10) {
      await this.setStep(op, "waiting for the shard's leader to report");
      return;
    }
    const shard = report.shard;
    const voters = new Set(shard.voters);
    const learners = new Set(shard.learners);
    const rollingBack = op.step.startsWith("rolling back");
    try {
      if (shard.votersOutgoing.length > 0) {
        await this.setStep(op, "leaving the joint configuration");
        return;
      }
      if (!voters.has(op.to) && !learners.has(op.to)) {
        if (rollingBack) return await this.setStep(op, op.step.replace("rolling back", "rolled back"), "aborted");
        if (op.from !== 0 && !voters.has(op.from))
          return await this.setStep(op, `node ${op.from} no longer holds shard ${op.shardId}; nothing to move`, "aborted");
        if (!this.isAlive(op.to)) return await this.setStep(op, `target node ${op.to} is not alive`, "aborted");
        await this.shardChange(report, { action: "add-learner", nodeId: op.to });
        await this.setStep(op, `adding node ${op.to} as a learner`);
        return;
      }
      if (learners.has(op.to)) {
        const match = shard.progress.find(([id]) => id === op.to)?.[1] ?? 0;
        const caughtUp = isCaughtUp(match, shard.commit) && this.isAlive(op.to);
        const timedOut = wallClockMs() - op.createdMs > this.settings.catchUpTimeoutMs;
        const targetDead = this.silentMs(op.to) > Math.min(this.settings.downAfterMs, 10_000);
        if (rollingBack || (!caughtUp && (timedOut || targetDead))) {
          const why = rollingBack ? op.step.replace(/^rolling back: /, "") : timedOut ? "catch-up timed out" : `target node ${op.to} died`;
          await this.shardChange(report, { action: "remove", nodeId: op.to });
          await this.setStep(op, `rolling back: ${why}`);
          return;
        }
        if (!caughtUp) {
          await this.setStep(op, `learner ${op.to} catching up (${match}/${shard.commit})`);
          return;
        }
        if (report.nodeId === op.from) return await this.moveLeadershipAway(op, report);
        if (!voters.has(op.from)) {
          await this.shardChange(report, { action: "promote", nodeId: op.to });
          await this.setStep(op, `promoting node ${op.to}`);
          return;
        }
        await this.shardChange(report, { action: "promote-and-remove", nodeId: op.to, removeId: op.from });
        await this.setStep(op, `promoting node ${op.to}, removing node ${op.from}`);
        return;
      }
      // op.to is a voter.
      if (voters.has(op.from)) {
        if (report.nodeId === op.from) return await this.moveLeadershipAway(op, report);
        await this.shardChange(report, { action: "remove", nodeId: op.from });
        await this.setStep(op, `removing node ${op.from}`);
        return;
      }
      await this.setStep(op, `moved: voters ${shard.voters.join(", ")} at epoch ${shard.epoch}`, "done");
    } catch (error) {
      if (error instanceof TallyError && (error.code === "FAILED_PRECONDITION" || error.code === "NOT_LEADER")) return; // stale report; next round
      this.log.debug({ err: error, op: op.id }, "move step failed");
    }
  }

  /**
   * Keeps the metadata group's replicas on up nodes: a replica on a down, draining or removed node
   * is replaced by one on an up node (learner, catch up, joint promote/remove: the same steps as a
   * shard move, on the group this leader leads, derived each round from its applied configuration,
   * so nothing needs recording to resume). When this leader's own replica must go, it hands the
   * leadership to another voter first.
   */
  private async driveMetaMembership(): Promise<void> {
    const meta = this.node.meta!;
    const conf = meta.confState;
    if (conf.votersOutgoing.length > 0) return; // leaving the joint configuration
    const bad = conf.voters.find((id) => {
      const record = nodeById(this.map, id);
      return record === undefined || record.state !== "up";
    });
    const learner = [...conf.learners, ...conf.learnersNext][0];
    if (bad === undefined) {
      if (learner !== undefined)
        await this.node
          .metaConfChange({ transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.RemoveNode, nodeId: learner }] })
          .catch(() => undefined);
      return;
    }
    if (learner === undefined) {
      const zonesUsed = new Set(conf.voters.filter((id) => id !== bad).map((id) => nodeById(this.map, id)?.zone));
      // The host rule holds for the metadata group as for shards (placement.ts): never two voters on one machine.
      const hostsUsed = new Set(conf.voters.filter((id) => id !== bad).map((id) => hostOfId(this.map, id)));
      const target = this.map.nodes
        .filter((n) => n.state === "up" && this.isAlive(n.id) && !conf.voters.includes(n.id) && !hostsUsed.has(hostOf(n)))
        .sort((a, b) => Number(zonesUsed.has(a.zone)) - Number(zonesUsed.has(b.zone)) || a.id - b.id)[0];
      if (target === undefined) return;
      this.log.info({ add: target.id, replacing: bad }, "metadata group: adding a learner");
      await this.node
        .metaConfChange({ transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: target.id }] })
        .catch((error: unknown) => this.log.debug({ err: error }, "meta learner not added"));
      return;
    }
    const status = meta.raw.status();
    const match = status.progress.get(learner)?.match ?? 0;
    if (!isCaughtUp(match, status.commit) || !this.isAlive(learner)) return;
    if (bad === this.node.nodeId) {
      const to = conf.voters.find((id) => id !== bad && this.isAlive(id));
      if (to !== undefined) await this.node.metaTransferLeader(to);
      return;
    }
    this.log.info({ promote: learner, remove: bad }, "metadata group: replacing a replica");
    await this.node
      .metaConfChange({
        transition: ConfChangeTransition.JointImplicit,
        changes: [
          { type: ConfChangeType.AddNode, nodeId: learner },
          { type: ConfChangeType.RemoveNode, nodeId: bad },
        ],
      })
      .catch((error: unknown) => this.log.debug({ err: error }, "meta promotion refused"));
  }

  /**
   * A shard whose leader reported more than placement.splitOpsPerSecond for splitSustainMs in a row
   * is split where its recent load halves (TiKV's load-based split).
   */
  private async maybeSplitHotShard(running: OperationRecord[]): Promise<void> {
    const threshold = this.settings.splitOpsPerSecond;
    if (threshold <= 0 || this.map.shards.length >= 1024) return;
    const now = monotonicMs();
    for (const [shardId, report] of this.leaderReports) {
      const hot = report.shard.opsPerSecond > threshold && report.shard.splitSlot > 0;
      if (!hot) {
        this.hotSinceMs.delete(shardId);
        continue;
      }
      const since = this.hotSinceMs.get(shardId) ?? now;
      this.hotSinceMs.set(shardId, since);
      if (now - since < this.settings.splitSustainMs || running.some((op) => op.shardId === shardId)) continue;
      this.hotSinceMs.delete(shardId);
      const [result] = await this.node.submitMeta([
        {
          type: "op-start",
          op: {
            kind: "split",
            shardId,
            from: 0,
            to: 0,
            splitSlot: report.shard.splitSlot,
            reason: `hot: ${Math.round(report.shard.opsPerSecond)} ops/s`,
          },
        },
      ]);
      if (result?.ok) this.log.info({ shard: shardId, splitSlot: report.shard.splitSlot, op: result.opId }, "hot shard split started");
      return;
    }
  }

  /** One idempotent step of a split: ask the parent's leader to split until its range shows it. */
  private async driveSplit(op: OperationRecord): Promise<void> {
    const parent = shardById(this.map, op.shardId);
    const child = op.newShardId === undefined ? undefined : shardById(this.map, op.newShardId);
    if (parent !== undefined && child !== undefined && parent.slotEnd === op.splitSlot) {
      await this.setStep(
        op,
        `split: shard ${parent.id} has slots ${parent.slotStart}-${parent.slotEnd - 1}, shard ${child.id} ${child.slotStart}-${child.slotEnd - 1}`,
        "done",
      );
      return;
    }
    const report = this.leaderReports.get(op.shardId);
    if (report === undefined || parent === undefined) {
      await this.setStep(op, "waiting for the shard's leader to report");
      return;
    }
    if (report.shard.slotEnd <= op.splitSlot!) return; // applied; the map mirrors it from the report
    if (wallClockMs() - op.createdMs > this.settings.catchUpTimeoutMs) {
      await this.setStep(op, "split did not happen before the timeout", "aborted");
      return;
    }
    try {
      await this.shardChange(report, { action: "split", splitSlot: op.splitSlot!, newShardId: op.newShardId! });
      await this.setStep(op, `splitting at slot ${op.splitSlot}`);
    } catch (error) {
      if (error instanceof TallyError && error.code === "INVALID_ARGUMENT") await this.setStep(op, error.message, "aborted");
      else this.log.debug({ err: error, op: op.id }, "split step failed");
    }
  }

  async startSplit(shardId: number, splitSlot: number | undefined, reason: string): Promise<{ id: number; splitSlot: number }> {
    const shard = shardById(this.map, shardId);
    if (shard === undefined) throw new InvalidArgumentError(`shard ${shardId} does not exist`);
    const slot = splitSlot ?? (this.leaderReports.get(shardId)?.shard.splitSlot || Math.floor((shard.slotStart + shard.slotEnd) / 2));
    const [result] = await this.node.submitMeta([
      { type: "op-start", op: { kind: "split", shardId, from: 0, to: 0, splitSlot: slot, reason } },
    ]);
    if (result === undefined || !result.ok) throw new FailedPreconditionError(result?.ok === false ? result.message : "split not started");
    return { id: result.opId!, splitSlot: slot };
  }

  // ---- operator requests (tallyctl) ----

  async startMove(shardId: number, from: number, to: number, reason: string): Promise<number> {
    const [result] = await this.node.submitMeta([{ type: "op-start", op: { kind: "move", shardId, from, to, reason } }]);
    if (result === undefined || !result.ok) throw new FailedPreconditionError(result?.ok === false ? result.message : "move not started");
    return result.opId!;
  }

  plan(): Plan {
    return planAll(this.map, this.view());
  }

  async applyPlan(): Promise<Plan> {
    const plan = this.plan();
    const started = new Set<number>();
    for (const move of plan.moves) {
      if (started.has(move.shardId)) continue;
      started.add(move.shardId);
      await this.startMove(move.shardId, move.from, move.to, `rebalance: ${move.reason}`).catch((error: unknown) =>
        this.log.debug({ err: error }, "planned move not started"),
      );
    }
    for (const transfer of plan.transfers) await this.transfer(transfer.shardId, transfer.from, transfer.to, transfer.reason);
    return plan;
  }

  /** Moves every leadership off `nodeId` now. */
  async failover(nodeId: number): Promise<Array<{ shardId: number; from: number; to: number }>> {
    if (nodeById(this.map, nodeId) === undefined) throw new InvalidArgumentError(`node ${nodeId} is not in the cluster`);
    const moved: Array<{ shardId: number; from: number; to: number }> = [];
    for (const [shardId, leader] of this.leaders()) {
      if (leader !== nodeId) continue;
      const shard = shardById(this.map, shardId);
      const report = this.leaderReports.get(shardId);
      if (shard === undefined || report === undefined) continue;
      const to = report.shard.voters.find((id) => id !== nodeId && this.isAlive(id) && nodeById(this.map, id)?.state === "up");
      if (to === undefined) continue;
      this.lastTransferMs.set(shardId, monotonicMs());
      await this.shardChange(report, { action: "transfer-leader", nodeId: to });
      moved.push({ shardId, from: nodeId, to });
    }
    return moved;
  }

  /** Replica and leader counts per node, for status. */
  counts(): Map<number, { replicas: number; leaders: number; opsPerSecond: number }> {
    const counts = new Map<number, { replicas: number; leaders: number; opsPerSecond: number }>();
    for (const node of this.map.nodes) counts.set(node.id, { replicas: 0, leaders: 0, opsPerSecond: 0 });
    for (const shard of this.map.shards) for (const id of shardMembers(shard)) counts.get(id) && counts.get(id)!.replicas++;
    for (const [shardId, leader] of this.leaders()) {
      const entry = counts.get(leader);
      if (entry === undefined) continue;
      entry.leaders++;
      entry.opsPerSecond += this.shardLoad(shardId);
    }
    return counts;
  }
}

function describeCommand(command: MetaCommand): string {
  switch (command.type) {
    case "node-add":
      return `node ${command.node.id} (${command.node.client}, zone ${command.node.zone}, host ${hostOf(command.node)}) joined`;
    case "node-state":
      return `node ${command.nodeId} is ${command.state}`;
    case "shard-report":
      return (
        `shard ${command.shard.id} at epoch ${command.shard.epoch}: voters ${command.shard.voters.join(",")}` +
        (command.shard.learners.length ? ` learners ${command.shard.learners.join(",")}` : "")
      );
    default:
      return command.type;
  }
}
