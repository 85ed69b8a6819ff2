/**
 * The first thing every CounterService and AdminService call meets (a grpc-js server
 * interceptor), in the order the bytes arrive:
 *   1. metadata: credentials (auth-gate.ts) and, for unary CounterService calls, the node-wide and
 *      per-connection in-flight bounds (request-guard.ts: the call holds its slot until it ends).
 *      A refused call is answered at once and grpc-js never reads its message: the handler's
 *      startRead() is what resumes the HTTP/2 stream, and the handler only runs once the metadata
 *      is passed on. So a caller without credentials cannot make the node buffer or decode
 *      anything, whatever size its message claims.
 *   2. the message, bounded by limits.maxRequestBytes on its length prefix before it is buffered
 *      (grpc.max_receive_message_length, RESOURCE_EXHAUSTED from grpc-js), then checked and
 *      decoded by request-bounds.ts; a RefusedRequest is answered here with INVALID_ARGUMENT and
 *      its ErrorInfo, instead of grpc-js's INTERNAL "Error deserializing request". A Pipeline op
 *      refused by a bound that still has its id goes on to the Pipeline handler, which answers
 *      that op alone.
 * Health checks and reflection pass through untouched.
 */
import * as grpc from "@grpc/grpc-js";
import type { TallyError } from "../../util/errors.js";
import type { AuthGate } from "./auth-gate.js";
import { toServiceError } from "./errors.js";
import type { Logger } from "../../util/log.js";
import { RefusedRequest } from "./request-bounds.js";
import type { RequestGuard } from "./request-guard.js";

/** How admission treats one method, by its path ("/tally.v1.CounterService/Add"). */
export interface AdmittedMethod {
  /** The name requests are counted under in the metrics (the service table's key: "add"). */
  rpc: string;
  /** Counted in flight (node-wide and per connection) from its metadata to its end: unary CounterService calls. */
  nodeBound: boolean;
}

export function admissionInterceptor(
  methods: ReadonlyMap<string, AdmittedMethod>,
  gate: AuthGate | undefined,
  guard: RequestGuard,
  log: Logger,
): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const method = methods.get(descriptor.path);
    if (method === undefined) return new grpc.ServerInterceptingCall(call);
    const refuse = (error: TallyError): void => {
      guard.refusedBeforeHandler(method.rpc, error);
      const status = toServiceError(error, log);
      call.sendStatus({ code: status.code, details: status.details, metadata: status.metadata });
    };
    let peer: string | undefined;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const denied = gate?.authenticateCall(metadata, call.getAuthContext().sslPeerCertificate, method.rpc, call.getPeer());
            if (denied !== undefined) return refuse(denied);
            if (method.nodeBound) {
              const overloaded = guard.admitCall(method.rpc, call.getPeer());
              if (overloaded !== undefined) return call.sendStatus(overloaded);
              peer = call.getPeer();
            }
            pass(metadata);
          },
          onReceiveMessage: (message, pass) => {
            if (message instanceof RefusedRequest && !(descriptor.requestStream && message.id !== undefined)) return refuse(message.error);
            pass(message);
          },
          // grpc-js calls this when the call ends for any reason (status sent, client cancelled,
          // deadline, connection lost), exactly once.
          onCancel: () => {
            if (peer === undefined) return;
            guard.finishCall(peer);
            peer = undefined;
          },
        }),
    });
  };
}

/**
 * Every method of `definition` by path, named as the service tables name them (proto-loader's
 * originalName, "getMany"); `nodeBound`: its unary methods are counted in flight.
 */
export function admittedMethods(definition: grpc.ServiceDefinition, nodeBound: boolean): Map<string, AdmittedMethod> {
  const methods = new Map<string, AdmittedMethod>();
  for (const [name, attributes] of Object.entries(definition)) {
    methods.set(attributes.path, {
      rpc: attributes.originalName ?? name,
      nodeBound: nodeBound && !attributes.requestStream && !attributes.responseStream,
    });
  }
  return methods;
}
