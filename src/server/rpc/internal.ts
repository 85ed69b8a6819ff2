/**
 * The node-to-node methods of AdminService (not for clients; auth-gate.ts adminAccess lets only the
 * cluster's own nodes call them). Their bodies are msgpack documents (meta-wire.ts):
 *   - Heartbeat: a node's load report to the metadata leader, answered with the map when the
 *     sender's copy is older (TallyNode.onHeartbeat);
 *   - ShardChange: a membership change the metadata leader asks a shard's leader to make
 *     (TallyNode.shardChange);
 *   - ForwardWrite: a request_id write forwarded to the shard's leader (forwarding.ts).
 */
import type { InternalRequestMessage, InternalResponseMessage } from "../../api/proto.js";
import { decodeBody, encodeBody, type NodeReport, type ShardChangeRequest } from "../meta-wire.js";
import type { TallyNode } from "../node.js";
import type { WriteForwarder } from "./forwarding.js";

export interface InternalApi {
  heartbeat(request: InternalRequestMessage): InternalResponseMessage;
  shardChange(request: InternalRequestMessage): Promise<InternalResponseMessage>;
  forwardWrite(request: InternalRequestMessage): Promise<InternalResponseMessage>;
}

/**
 * `trustOwner`: the cluster authenticates its nodes (auth on), so the owner a forwarded write
 * names is a verified name (forwarding.ts serve).
 */
export function internalApi(node: TallyNode, forwarder: WriteForwarder, trustOwner: boolean): InternalApi {
  return {
    heartbeat: (r) => ({ body: encodeBody(node.onHeartbeat(decodeBody<NodeReport>(r.body, "heartbeat"))) }),
    shardChange: async (r) => ({ body: encodeBody(await node.shardChange(decodeBody<ShardChangeRequest>(r.body, "shard change"))) }),
    forwardWrite: async (r) => ({ body: await forwarder.serve(r.body, trustOwner) }),
  };
}
