/**
 * RaftConfig validation at construction (etcd Config.validate): every relationship between the
 * knobs is checked up front with a message that names the fix, so a bad config never becomes a
 * subtle liveness or safety bug later.
 */
import { InvalidArgumentError } from "../util/errors.js";
import { NONE, type RaftConfig } from "./types.js";

function fail(message: string): never {
  throw new InvalidArgumentError(`raft config: ${message}`);
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

export function validateConfig(c: RaftConfig): void {
  if (!isCount(c.id) || c.id === NONE) fail(`id must be a positive integer (got ${String(c.id)}); 0 means "none"`);
  if (!isCount(c.heartbeatTicks) || c.heartbeatTicks < 1) fail(`heartbeatTicks must be >= 1 (got ${String(c.heartbeatTicks)})`);
  if (!isCount(c.electionTicks) || c.electionTicks <= c.heartbeatTicks) {
    fail(`electionTicks (${String(c.electionTicks)}) must be greater than heartbeatTicks (${c.heartbeatTicks})`);
  }
  if (c.storage === undefined || c.storage === null) fail("storage is required");
  if (c.prng === undefined || c.prng === null) fail("prng is required (election jitter must be seeded)");
  if (c.applied !== undefined && !isCount(c.applied)) fail(`applied must be a non-negative integer (got ${String(c.applied)})`);
  if (!isCount(c.maxSizePerMsg) || c.maxSizePerMsg < 1) fail(`maxSizePerMsg must be >= 1 (got ${String(c.maxSizePerMsg)})`);
  if (!isCount(c.maxInflightMessages) || c.maxInflightMessages < 1) {
    fail(`maxInflightMessages must be >= 1 (got ${String(c.maxInflightMessages)})`);
  }
  if (!isCount(c.maxInflightBytes)) fail(`maxInflightBytes must be >= 0, 0 = unlimited (got ${String(c.maxInflightBytes)})`);
  if (c.maxInflightBytes > 0 && c.maxInflightBytes < c.maxSizePerMsg) {
    fail(`maxInflightBytes (${c.maxInflightBytes}) must be 0 or >= maxSizePerMsg (${c.maxSizePerMsg})`);
  }
  if (!isCount(c.maxUncommittedEntriesBytes) || c.maxUncommittedEntriesBytes < 1) {
    fail(`maxUncommittedEntriesBytes must be >= 1 (got ${String(c.maxUncommittedEntriesBytes)})`);
  }
  if (!isCount(c.maxCommittedSizePerReady) || c.maxCommittedSizePerReady < 1) {
    fail(`maxCommittedSizePerReady must be >= 1 (got ${String(c.maxCommittedSizePerReady)})`);
  }
  if (typeof c.preVote !== "boolean") fail("preVote must be a boolean");
  if (typeof c.checkQuorum !== "boolean") fail("checkQuorum must be a boolean");
  if (!isCount(c.leaseDriftTicks)) fail(`leaseDriftTicks must be a non-negative integer (got ${String(c.leaseDriftTicks)})`);
  if (c.leaseDriftTicks >= c.electionTicks) {
    fail(`leaseDriftTicks (${c.leaseDriftTicks}) must be less than electionTicks (${c.electionTicks})`);
  }
  // Thesis 6.4.1: a lease is safe only because followers refuse votes while they hear from the
  // leader, which is checkQuorum's rule (thesis 4.2.3).
  if (c.leaseDriftTicks > 0 && !c.checkQuorum) {
    fail("leaseDriftTicks > 0 enables leader leases, which require checkQuorum: true");
  }
}
