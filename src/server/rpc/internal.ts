/**
 * The node-to-node methods of AdminService (not for clients; auth-gate.ts adminAccess lets only the
 * cluster's own nodes call them), each in its own proto messages:
 *   - Heartbeat: a node's load report to the metadata leader, answered with the map when the
 *     sender's copy is older (TallyNode.onHeartbeat; HeartbeatRequest / HeartbeatResponse, meta-wire.ts);
 *   - ShardChange: a membership change the metadata leader asks a shard's leader to make
 *     (TallyNode.shardChange; ShardChangeRequest / ShardChangeResponse, meta-wire.ts);
 *   - ForwardWrite: a request_id write forwarded to the shard's leader (ForwardWriteRequest /
 *     ForwardWriteResponse; forwarding.ts, forward-codec.ts).
 * A request in an older node's format (a msgpack body in field 1, reserved in all six messages) is
 * refused with INVALID_ARGUMENT before anything changes.
 */
import type {
  ForwardWriteRequestMessage,
  ForwardWriteResponseInput,
  HeartbeatRequestMessage,
  HeartbeatResponseInput,
  ShardChangeRequestMessage,
  ShardChangeResponseInput,
} from "../../api/proto.js";
import { heartbeatResponse, nodeReportOf, shardChangeOf, shardChangeResponse } from "../meta-wire.js";
import type { TallyNode } from "../node.js";
import type { WriteForwarder } from "./forwarding.js";

export interface InternalApi {
  heartbeat(request: HeartbeatRequestMessage): HeartbeatResponseInput;
  shardChange(request: ShardChangeRequestMessage): Promise<ShardChangeResponseInput>;
  forwardWrite(request: ForwardWriteRequestMessage): Promise<ForwardWriteResponseInput>;
}

/**
 * `trustOwner`: the cluster authenticates its nodes (auth on), so the owner a forwarded write
 * names is a verified name (forwarding.ts serve).
 */
export function internalApi(node: TallyNode, forwarder: WriteForwarder, trustOwner: boolean): InternalApi {
  return {
    heartbeat: (r) => heartbeatResponse(node.onHeartbeat(nodeReportOf(r))),
    shardChange: async (r) => shardChangeResponse(await node.shardChange(shardChangeOf(r))),
    forwardWrite: (r) => forwarder.serve(r, trustOwner),
  };
}
