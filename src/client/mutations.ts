/**
 * The exactly-once promise (docs/errors.md): runUnit sends one MutationUnit under one
 * (clientId, seq) and retries that same seq until a definite answer; judgeMutationOutcome sorts
 * every outcome into applied, not applied or unknown. A caller whose unit's outcome is unknown
 * when its deadline passes gets AmbiguousOperationError, never a plain failure.
 *
 * Invariant (MutationUnit): a unit's ops change only while its outcome is known not applied, and
 * then its seq is released (releaseSeq), so one seq always names one request.
 */
import { errorInfoToError, type ErrorInfo } from "../api/error-details.js";
import { decodePackedResults, type PackedResult } from "../api/packed-batch.js";
import type { PipelineResponseMessage, RequestHeaderInput } from "../api/proto.js";
import { assert } from "../util/assert.js";
import { monotonicMs } from "../util/clock.js";
import { TallyError, UnavailableError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import type { ConnectionPool } from "./connection-pool.js";
import { AmbiguousOperationError, ClientClosedError, TimeoutError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import { buildMutationRequest, describeKey } from "./mutation-ops.js";
import { MutationUnit, type LeaveReason, type MutationOp, type UnitEntry, type Waiter } from "./mutation-unit.js";
import type { PipelineOutcome } from "./node-connection.js";
import { groupWaiter } from "./packed-group.js";
import { accessDenied, AttemptError, DEADLINE_SLACK_MS, deadlineError, messageOf, sleep, type RetryPolicy } from "./retry.js";
import type { Router, SlotRouting } from "./router.js";
import type { ShardRoute } from "./routing.js";
import type { SessionRegistry } from "./session-registry.js";
import type { ShardSession } from "./session.js";
import type { MutationResult } from "./types.js";
import { fenceFromMessage, int64Wire, wireBigInt } from "./values.js";

export class MutationEngine {
  private readonly activeUnits = new Set<MutationUnit>();

  constructor(
    private readonly life: Lifecycle,
    private readonly router: Router,
    private readonly sessions: SessionRegistry,
    private readonly pool: ConnectionPool,
    private readonly policy: RetryPolicy,
    private readonly logger: Logger,
  ) {}

  /** close(): every running unit stops; its loop settles the callers. */
  cancelAll(): void {
    for (const unit of this.activeUnits) unit.cancellation.cancel();
  }

  /**
   * Runs the entries as one request. `answered` (the auto-batcher's request slot) is called once:
   * when the first attempt ends (a reply, an error or no answer), or before the unit first waits
   * to retry or ends, if sooner.
   */
  startUnit(entries: UnitEntry[], atomic: boolean, answered?: () => void): void {
    const live = entries.filter((entry) => !entry.waiter.settled);
    if (live.length === 0) return answered?.();
    const unit = new MutationUnit(live, atomic, answered);
    const leave = (waiter: Waiter, reason: LeaveReason) => this.onWaiterLeave(unit, waiter, reason);
    for (const entry of live) entry.waiter.leave = leave;
    if (this.life.closed) {
      this.failUnit(unit, new ClientClosedError());
      unit.noteAnswered();
      return;
    }
    this.activeUnits.add(unit);
    const loop = this.runUnit(unit)
      .catch((error: unknown) => {
        // A bug, not an expected failure: fail the callers loudly rather than hang them.
        this.logger.error({ err: error }, "mutation loop failed");
        this.failUnit(unit, error);
      })
      .finally(() => {
        unit.noteAnswered();
        this.activeUnits.delete(unit);
        this.life.loops.delete(loop);
      });
    this.life.loops.add(loop);
  }

  private onWaiterLeave(unit: MutationUnit, waiter: Waiter, reason: LeaveReason): void {
    if (waiter.settled) return;
    const cause = reason === "abort" ? waiter.signal?.reason : unit.lastError;
    if (unit.outcomeUnknown) {
      this.rejectAmbiguous(waiter, unit, cause, reason === "abort" ? "cancelled" : "deadline passed");
    } else {
      waiter.reject(reason === "abort" ? waiter.signal?.reason : deadlineError(unit.lastError));
    }
    unit.liveCount--;
    assert(unit.liveCount >= 0, "more callers left than the unit had");
    if (unit.liveCount === 0) unit.cancellation.cancel();
  }

  private ambiguous(op: MutationOp, unit: MutationUnit, cause: unknown, why: string): AmbiguousOperationError {
    const detail = op.kind === "add" ? ` (delta ${op.delta})` : op.kind === "reset" ? "" : ` (value ${op.value})`;
    const causeText = cause === undefined ? "" : `: ${messageOf(cause)}`;
    return new AmbiguousOperationError(
      `${op.kind} on ${describeKey(op.keyInput)}${detail} may or may not have been applied (${why}${causeText})`,
      {
        kind: op.kind,
        key: op.keyInput,
        ...(op.kind === "add" ? { delta: op.delta } : {}),
        ...(op.kind === "set" || op.kind === "compareAndSet" ? { value: op.value } : {}),
        ...(op.kind === "compareAndSet" ? { expectedVersion: op.expectedVersion } : {}),
        ...(unit.shardId !== undefined ? { shardId: unit.shardId } : {}),
        ...(unit.session !== undefined ? { clientId: unit.session.clientId } : {}),
        ...(unit.seq !== undefined ? { seq: unit.seq } : {}),
      },
      { cause },
    );
  }

  /** Fails the waiter's op (each op of its group) as ambiguous. */
  private rejectAmbiguous(waiter: Waiter, unit: MutationUnit, cause: unknown, why: string): void {
    const group = waiter.group;
    if (group === undefined) waiter.reject(this.ambiguous(waiter.op, unit, cause, why));
    else waiter.rejectEach((opIndex) => this.ambiguous(group.opAt(opIndex), unit, cause, why));
  }

  /** The client gives up on the unit's seq: release it so the server may forget its result. */
  private releaseSeq(unit: MutationUnit): void {
    if (unit.seq !== undefined) {
      unit.session?.complete(unit.seq);
      unit.seq = undefined;
    }
  }

  /** Rejects every waiting caller: ambiguous if the unit may have been applied, else `error`. */
  private failUnit(unit: MutationUnit, error: unknown, forceAmbiguous = false): void {
    const ambiguous = forceAmbiguous || unit.outcomeUnknown;
    for (const entry of unit.entries) {
      if (entry.waiter.settled) continue;
      if (ambiguous) this.rejectAmbiguous(entry.waiter, unit, error, "no definite answer");
      else entry.waiter.reject(error);
    }
    this.releaseSeq(unit);
  }

  private async runUnit(unit: MutationUnit): Promise<void> {
    let failures = 0;
    let delayMs = 0;
    for (;;) {
      if (delayMs > 0) {
        unit.noteAnswered(); // a unit waiting to retry is not on its way: the shard's next batch may go
        await sleep(Math.min(delayMs, unit.deadlineAtMs - monotonicMs()), unit.cancellation);
      }
      delayMs = 0;
      if (unit.liveCount === 0) {
        // Every caller has left. Never send this seq again; if it was applied, that stands.
        this.releaseSeq(unit);
        return;
      }
      if (this.life.closed) return this.failUnit(unit, new ClientClosedError());
      if (monotonicMs() >= unit.deadlineAtMs) return this.failUnit(unit, deadlineError(unit.lastError));
      if (!unit.outcomeUnknown && unit.entries.some((entry) => entry.waiter.settled)) {
        // Callers that left took their ops with them; the content changes, so does the seq.
        unit.entries = unit.entries.filter((entry) => !entry.waiter.settled);
        this.releaseSeq(unit);
      }

      let routing: SlotRouting;
      try {
        routing = await this.router.routeForSlots(unitSlots(unit));
      } catch (error) {
        const denied = accessDenied(error);
        if (denied !== undefined) return this.failUnit(unit, denied);
        unit.lastError = error;
        delayMs = this.policy.backoffMs(++failures);
        continue;
      }
      if (routing.kind === "split") {
        // The map changed under the unit (a shard split): its keys now live on several shards.
        if (unit.outcomeUnknown)
          return this.failUnit(unit, new TallyError("WRONG_SHARD", "the keys moved to another shard while the outcome was unknown"));
        this.releaseSeq(unit);
        const group = unit.entries.length === 1 ? unit.entries[0]!.waiter : undefined;
        if (group?.group !== undefined) return this.splitGroup(group, routing.groups);
        for (const indexes of routing.groups.values())
          this.startUnit(
            indexes.map((index) => unit.entries[index]!),
            unit.atomic,
          );
        return;
      }
      const route = routing.route;
      if (unit.shardId !== route.shardId) {
        if (unit.shardId !== undefined && unit.outcomeUnknown) {
          return this.failUnit(
            unit,
            new TallyError("WRONG_SHARD", `the key moved from shard ${unit.shardId} to ${route.shardId} while the outcome was unknown`),
          );
        }
        this.releaseSeq(unit);
        unit.shardId = route.shardId;
      }

      let session: ShardSession;
      try {
        session = await this.sessions.sessionFor(route, unit.deadlineAtMs, unit.cancellation);
      } catch (error) {
        if (unit.cancellation.cancelled) continue;
        const denied = accessDenied(error);
        if (denied !== undefined) return this.failUnit(unit, denied);
        unit.lastError = error instanceof AttemptError ? error.error : error;
        delayMs = await this.policy.onAttemptError(error, route, ++failures);
        continue;
      }
      if (this.life.closed || unit.cancellation.cancelled) continue; // the loop's checks settle it
      if (unit.session !== session) {
        if (unit.seq !== undefined) {
          // The old session expired. Resending under a new session could apply twice.
          if (unit.outcomeUnknown) return this.failUnit(unit, unit.lastError ?? new TallyError("SESSION_EXPIRED", "session expired"));
          this.releaseSeq(unit);
        }
        unit.session = session;
      }
      if (unit.seq === undefined) unit.seq = session.allocate();

      let address: string;
      try {
        address = this.router.leaderAddress(route);
      } catch (error) {
        unit.lastError = error;
        this.router.refreshRoutesSoon();
        delayMs = this.policy.backoffMs(++failures);
        continue;
      }
      const outcome = await this.sendAttempt(unit, session, route, address);
      const verdict = await this.judgeMutationOutcome(unit, session, route, address, outcome, ++failures);
      if (verdict === "done") return;
      delayMs = verdict === "retry-now" ? 0 : verdict;
    }
  }

  /** A group's ops now on several shards: a group (and a waiter) per shard takes them over. */
  private splitGroup(waiter: Waiter, groups: Map<number, number[]>): void {
    // The caller left (deadline, abort) during the route lookup: as startUnit drops such callers.
    if (waiter.settled) return;
    const group = waiter.group!;
    const sink = waiter.sink;
    waiter.retire();
    for (const indexes of groups.values())
      this.startUnit([groupWaiter(group.subset(indexes), waiter.deadlineAtMs, waiter.signal, sink)], true);
  }

  /** One attempt of the unit under its seq; the unit's outcome is unknown while it is on the wire. */
  private async sendAttempt(unit: MutationUnit, session: ShardSession, route: ShardRoute, address: string): Promise<PipelineOutcome> {
    const seq = unit.seq;
    assert(seq !== undefined, "a unit is sent under a seq");
    const header: RequestHeaderInput = {
      shardId: route.shardId,
      epoch: int64Wire(route.epoch),
      clientId: int64Wire(session.clientId),
      seq: int64Wire(seq),
      firstUnackedSeq: int64Wire(session.firstUnackedSeq()),
    };
    assert(session.firstUnackedSeq() <= seq, "firstUnackedSeq passed an outstanding seq");
    const [opName, op] = buildMutationRequest(unit.entries, header);
    unit.inFlight = true;
    session.lastUsedAtMs = monotonicMs();
    const outcome = await this.pool
      .connection(address)
      .send(opName, op, this.policy.attemptTimeoutMs(unit.timeouts, unit.deadlineAtMs), unit.deadlineAtMs, unit.cancellation);
    unit.inFlight = false;
    unit.noteAnswered();
    return outcome;
  }

  /** Acts on one attempt's outcome: "done" (callers settled) or the delay before the next attempt. */
  private async judgeMutationOutcome(
    unit: MutationUnit,
    session: ShardSession,
    route: ShardRoute,
    address: string,
    outcome: PipelineOutcome,
    failures: number,
  ): Promise<"done" | "retry-now" | number> {
    switch (outcome.kind) {
      case "reply":
        this.completeUnit(unit, outcome.response);
        return "done";
      case "aborted":
        if (outcome.sent) unit.unresolved = true;
        // Its deadline ended it while the node held it: the next operation asks another replica first.
        if (outcome.sent && monotonicMs() >= unit.deadlineAtMs - DEADLINE_SLACK_MS) this.policy.avoidNode(route, address);
        return "retry-now"; // the loop's checks settle it
      case "unsent":
        unit.lastError = new UnavailableError(`cannot connect to ${address}`, { cause: outcome.cause });
        this.router.onNodeFailure(route, address);
        return this.policy.backoffMs(failures);
      case "lost":
        unit.unresolved = true;
        unit.lastError = new UnavailableError(`connection to ${address} lost`, { cause: outcome.cause });
        this.router.onNodeFailure(route, address);
        return this.policy.backoffMs(failures);
      case "timeout":
        unit.unresolved = true;
        unit.timeouts++;
        unit.lastError = new TimeoutError(`no reply from ${address} within the attempt timeout`);
        // As for reads: a node that stops answering (a paused or cut-off leader) goes last for a
        // while and the shard's leader is forgotten, so the same seq goes to another replica, which
        // names the leader (NOT_LEADER: nothing applied) or, leading now, applies it once (the
        // shard's session dedupes every attempt of the seq).
        this.policy.avoidNode(route, address);
        return this.policy.backoffMs(failures);
      case "error": {
        const error = errorInfoToError(outcome.info);
        unit.lastError = error;
        switch (error.code) {
          case "SESSION_EXPIRED":
            // Next iteration: a fresh unit re-registers; one that may have been applied is ambiguous.
            this.sessions.dropSession(session);
            return failures <= 1 ? "retry-now" : this.policy.backoffMs(failures);
          case "NOT_LEADER":
          case "WRONG_SHARD":
          case "OVERLOADED":
            // Rejected before proposing (the server answers NOT_LEADER only for a write that never
            // entered the log; one proposed before leadership moved is AMBIGUOUS): this attempt
            // applied nothing. Earlier attempts of the unit may have: the same seq is retried.
            return this.policy.onAttemptError(new AttemptError(error, address), route, failures);
          case "UNAVAILABLE":
          case "TIMEOUT":
          case "AMBIGUOUS":
            unit.unresolved = true;
            return this.policy.onAttemptError(new AttemptError(error, address), route, failures);
          case "INTERNAL":
          case "CORRUPTION":
            // Not retried, and not known to have failed.
            this.failUnit(unit, error, true);
            return "done";
          default:
            this.failUnitDefinitely(unit, error, outcome.info);
            return "done";
        }
      }
    }
  }

  private completeUnit(unit: MutationUnit, response: PipelineResponseMessage): void {
    const { entries } = unit;
    const group = entries.length === 1 ? entries[0]!.waiter.group : undefined;
    if (group !== undefined) {
      const batch = response.result === "batch" ? response.batch : undefined;
      try {
        if (batch === undefined || batch === null) throw new Error(`${response.result ?? "empty"} reply`);
        group.resolve(batch.packedResults ?? EMPTY, fenceFromMessage(batch.fence));
      } catch (error) {
        return this.failUnit(unit, new TallyError("INTERNAL", `malformed reply for ${group.count} ops: ${messageOf(error)}`), true);
      }
      this.releaseSeq(unit);
      entries[0]!.waiter.resolveGroup();
      return;
    }
    const mutation = response.result === "mutation" ? response.mutation : undefined;
    if (entries.length === 1 && mutation !== undefined && mutation !== null) {
      this.releaseSeq(unit);
      entries[0]!.waiter.resolve({
        value: wireBigInt(mutation.value),
        version: wireBigInt(mutation.version),
        fence: fenceFromMessage(mutation.fence),
      });
      return;
    }
    const packed = response.result === "batch" ? response.batch?.packedResults : undefined;
    if (packed !== undefined && packed.length > 0) {
      let results: PackedResult[];
      try {
        results = decodePackedResults(packed, entries.length);
      } catch (error) {
        return this.failUnit(unit, new TallyError("INTERNAL", `malformed reply for ${entries.length} ops: ${messageOf(error)}`), true);
      }
      const fence = fenceFromMessage(response.batch!.fence);
      this.releaseSeq(unit);
      // Every op of one request changes its counter at the same log index: one bigint serves them.
      let version = -1;
      let versionBig = 0n;
      for (let i = 0; i < results.length; i++) {
        const result = results[i]!;
        if (result.version !== version) versionBig = BigInt((version = result.version));
        entries[i]!.waiter.resolve({ value: result.value, version: versionBig, fence });
      }
      return;
    }
    const batch = response.result === "batch" ? response.batch : undefined;
    if (batch !== undefined && batch !== null && batch.results.length === entries.length) {
      const fence = fenceFromMessage(batch.fence);
      this.releaseSeq(unit);
      batch.results.forEach((result, index) => {
        const resolved: MutationResult = { value: wireBigInt(result.value), version: wireBigInt(result.version), fence };
        if (entries[index]!.op.kind === "windowAdd") resolved.eventTimeMs = Number(result.eventTimeMs ?? 0);
        if (result.hasAcquire) {
          resolved.allowed = result.allowed ?? false;
          resolved.retryAfterMs = Number(result.retryAfterMs ?? 0);
        }
        entries[index]!.waiter.resolve(resolved);
      });
      return;
    }
    this.failUnit(unit, new TallyError("INTERNAL", `malformed reply (${response.result ?? "empty"}) for ${entries.length} ops`), true);
  }

  /**
   * A definite error: the seq was not applied. In an auto-batch only the op the server blamed
   * fails; the others were not applied either (a batch is atomic) and go again under a new seq.
   */
  private failUnitDefinitely(unit: MutationUnit, error: TallyError, info: ErrorInfo): void {
    const { entries } = unit;
    this.releaseSeq(unit);
    const group = entries.length === 1 ? entries[0]!.waiter.group : undefined;
    if (group !== undefined && info.hasOpIndex && info.opIndex < group.count) group.blamedPosition = group.positions[info.opIndex];
    const blamed = info.hasOpIndex && info.opIndex < entries.length && group === undefined ? entries[info.opIndex] : undefined;
    if (unit.atomic || entries.length === 1) {
      if (blamed !== undefined) blamed.waiter.blamed = true;
      for (const entry of entries) entry.waiter.reject(error);
      return;
    }
    if (blamed !== undefined) {
      blamed.waiter.reject(error);
      this.startUnit(
        entries.filter((entry) => entry !== blamed),
        false,
      );
    } else {
      // The server did not say which op; let each op find out on its own.
      for (const entry of entries) this.startUnit([entry], false);
    }
  }
}

const EMPTY = new Uint8Array(0);

/** The slots of a unit's ops (a group's are in one typed array). */
function unitSlots(unit: MutationUnit): ArrayLike<number> {
  const group = unit.entries.length === 1 ? unit.entries[0]!.waiter.group : undefined;
  if (group !== undefined) return group.slots;
  const slots: number[] = new Array(unit.entries.length);
  for (let i = 0; i < slots.length; i++) slots[i] = unit.entries[i]!.op.slot;
  return slots;
}
