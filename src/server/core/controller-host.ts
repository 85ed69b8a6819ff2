/**
 * What the placement controller (meta-controller.ts) needs of the node that hosts it. TallyNode
 * implements it; the controller depends on this interface, not on the node, so node.ts and
 * meta-controller.ts do not import each other.
 */
import type { ConfChange } from "../../raft/types.js";
import type { MetaCommand, MetaResult } from "../../meta/map.js";
import type { ClusterConfig } from "../config/config.js";
import type { AdminClients, ShardChangeRequest } from "../meta-wire.js";
import type { MetaReplica } from "../shard-replica.js";

export interface ControllerHost {
  readonly nodeId: number;
  readonly config: ClusterConfig;
  /** The node's metadata replica; the controller runs only while it exists (and leads). */
  readonly meta: MetaReplica | undefined;
  readonly adminClients: Pick<AdminClients, "internal">;
  /** Proposes commands to the map through the node's metadata replica (which must lead). */
  submitMeta(commands: MetaCommand[]): Promise<MetaResult[]>;
  /** A change asked of a shard whose leader is this node, conditional on the shard's epoch. */
  shardChange(request: ShardChangeRequest): Promise<{ epoch: number }>;
  /** A membership change of the metadata group. */
  metaConfChange(change: ConfChange): Promise<void>;
  metaTransferLeader(to: number): Promise<void>;
  clientAddressOf(id: number): string | undefined;
}
