/**
 * The metadata group's state machine: the partition map. Replicated by its own Raft group (group
 * 0, on the first `metaReplicas` nodes), it holds
 *   - nodes: id, addresses, zone, and the operator/controller state (up, down, draining, removed);
 *   - shards: id, slot range, epoch, voters and learners, as last reported by the shard's leader;
 *   - operations: replica moves in flight and the last finished ones, so that a move survives a
 *     crash of its coordinator (the meta leader) and a new leader resumes it.
 *
 * Authority: the meta group decides membership (which nodes exist, what moves to make); each shard
 * is the authority on its own descriptor (epoch, replica set), which changes only through entries
 * in the shard's own log (CockroachDB's range descriptors). The map mirrors those descriptors:
 * shard leaders report them, and a report is adopted only if its epoch is newer, so the map only
 * moves forward. Liveness (heartbeats, load) is soft state on the meta leader, never logged.
 *
 * The records and queries are in cluster-map.ts (re-exported here), the rule of each command in
 * map-commands.ts; this file decodes entries and dispatches their commands.
 *
 * Pure and deterministic like src/shard: time is the leader's stamp in each entry.
 */
import { Packr } from "msgpackr";
import { assert } from "../util/assert.js";
import { CorruptionError, InvalidArgumentError } from "../util/errors.js";
import { type ClusterMap, emptyMap, type MetaCommand, type MetaResult } from "./cluster-map.js";
import {
  applyHotActivate,
  applyInit,
  applyMetaReport,
  applyNodeAdd,
  applyNodeState,
  applyOpStart,
  applyOpUpdate,
  applyShardReport,
  declareHot,
} from "./map-commands.js";

export * from "./cluster-map.js";

const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeMetaEntry(timestampMs: number, commands: MetaCommand[]): Uint8Array {
  return packr.pack([timestampMs, commands]);
}

export class MetaStateMachine {
  private state: ClusterMap = emptyMap();

  get appliedIndex(): number {
    return this.state.version;
  }

  get map(): Readonly<ClusterMap> {
    return this.state;
  }

  /** Applies one committed entry; results in command order. Empty data is a no-op entry. */
  applyEntry(index: number, data: Uint8Array): MetaResult[] {
    assert(index > this.state.version, `meta entry ${index} applied out of order (applied ${this.state.version})`);
    this.state.version = index;
    if (data.length === 0) return [];
    let decoded: unknown;
    try {
      decoded = packr.unpack(data);
    } catch (error) {
      throw new CorruptionError(`meta entry ${index} does not decode: ${(error as Error).message}`);
    }
    if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== "number" || !Array.isArray(decoded[1])) {
      throw new CorruptionError(`meta entry ${index} has the wrong shape`);
    }
    const timestampMs = decoded[0];
    if (timestampMs > this.state.clockMs) this.state.clockMs = timestampMs;
    return (decoded[1] as MetaCommand[]).map((command) => {
      try {
        return this.apply(command, index);
      } catch (error) {
        if (error instanceof InvalidArgumentError) return { ok: false, code: "INVALID_ARGUMENT", message: error.message };
        throw error;
      }
    });
  }

  private apply(command: MetaCommand, index: number): MetaResult {
    const map = this.state;
    const now = map.clockMs;
    if (command.type !== "init" && !map.initialized)
      return { ok: false, code: "FAILED_PRECONDITION", message: "the partition map is not initialized yet" };
    switch (command.type) {
      case "init":
        return applyInit(map, command, now);
      case "meta-report":
        return applyMetaReport(map, command);
      case "node-add":
        return applyNodeAdd(map, command, now);
      case "node-state":
        return applyNodeState(map, command, now);
      case "shard-report":
        return applyShardReport(map, command);
      case "op-start":
        return applyOpStart(map, command, now);
      case "op-update":
        return applyOpUpdate(map, command, now);
      case "hot-declare":
        return declareHot(map, command.key, command.subCounters, index);
      case "hot-activate":
        return applyHotActivate(map, command, now);
      default:
        throw new InvalidArgumentError(`unknown meta command ${String((command as { type: unknown }).type)} at index ${index}`);
    }
  }

  snapshot(): Uint8Array {
    return packr.pack(this.state);
  }

  static restore(data: Uint8Array): MetaStateMachine {
    const machine = new MetaStateMachine();
    let decoded: unknown;
    try {
      decoded = packr.unpack(data);
    } catch (error) {
      throw new CorruptionError(`meta state does not decode: ${(error as Error).message}`);
    }
    const state = decoded as ClusterMap;
    if (
      typeof state !== "object" ||
      state === null ||
      !Array.isArray(state.nodes) ||
      !Array.isArray(state.shards) ||
      !Array.isArray(state.operations)
    ) {
      throw new CorruptionError("meta state has the wrong shape");
    }
    machine.state = state;
    return machine;
  }
}
