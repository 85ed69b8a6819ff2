/**
 * The types TallyNode (node.ts) shows the gRPC services, and the counters it keeps. node.ts
 * re-exports them, so callers import them from there.
 */
import type { CommandResult } from "../../shard/commands.js";
import type { ClusterConfig } from "../config/config.js";
import type { ShardDescriptor } from "../descriptor.js";
import type { Logger } from "../../util/log.js";

export interface NodeOptions {
  config: ClusterConfig;
  nodeId: number;
  logger?: Logger;
}

/**
 * PLANTED BUGS for the chaos harness (docs/testing.md), never set in production; tallyd's main sets them
 * from TALLY_TEST_* (src/server/testing/fault-switches.ts). ackBeforeCommit: core/requests.ts
 * ackBeforeCommit(); notLeaderAfterPropose: writes answered NOT_LEADER though they may commit (GroupReplica.failInflight()).
 */
export type NodeFaults = { ackBeforeCommit?: boolean; notLeaderAfterPropose?: boolean };
export type TallyNodeOptions = NodeOptions & { faults?: NodeFaults };

export interface ReadResult {
  /** kind: set when the key holds another kind (windowed counter, rate limit, unique count). */
  values: Array<{ value: bigint; version: number; exists: boolean; kind?: string | undefined }>;
  term: number;
  appliedIndex: number;
}

export interface MutationOutcome {
  result: CommandResult;
  index: number;
  term: number;
}

export type Consistency = "linearizable" | "stale";

export interface ShardBackupSnapshot {
  shardId: number;
  descriptor: ShardDescriptor;
  appliedIndex: number;
  term: number;
  clockMs: number;
  counters: number;
  leaderId: number;
  /** wrapShardSnapshot(descriptor, machine snapshot at appliedIndex). */
  data: Uint8Array;
}

/** The node's monotonic counters (TallyNode.stats), mirrored into metrics at scrape time. */
export function newNodeStats() {
  return {
    iterations: 0,
    entriesWritten: 0,
    syncs: 0,
    applied: 0,
    appliedBytesPerIterationMax: 0,
    leaderChanges: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    snapshotsBuilt: 0,
    checkpointsTaken: 0,
    checkpointsFailed: 0,
    replicasCreated: 0,
    replicasRemoved: 0,
    staleEpochRejected: 0,
  };
}

export type NodeStats = ReturnType<typeof newNodeStats>;
