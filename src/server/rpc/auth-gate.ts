/**
 * Access control on the client port, applied to each call (the policy is config/auth.ts).
 * Credentials are checked from the call's metadata and certificate before any byte of the request
 * is read (admission.ts: UNAUTHENTICATED for none or unknown ones); roles, which depend on the
 * keys, after it is decoded and before it becomes a command (PERMISSION_DENIED). Either way
 * nothing is applied. The routing map shows each caller only the hot counters it holds a role on.
 * The authenticated caller's name is stamped on the decoded request, so sessions are owned by it.
 */
import type * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { errorToErrorInfo, type ErrorInfo } from "../../api/error-details.js";
import type { PipelineRequestMessage, PipelineResponseInput } from "../../api/proto.js";
import { packedAddKeys } from "../../util/packed-adds.js";
import { TallyError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { authorizerFor, type Access, type Authorizer, type Principal } from "../config/auth.js";
import { keyHasPrefix } from "../../shard/keys.js";
import type { ClusterConfig } from "../config/config.js";
import { failStream, toServiceError } from "./errors.js";

// ---- what each RPC touches ----

/**
 * The fields the access rules read, whatever the request (the decoders read the same ones). Any
 * of them may be missing or malformed: keyOf makes those the empty key.
 */
type KeyFields = { key?: unknown; keys?: unknown; prefix?: unknown; packedAdds?: unknown; ops?: unknown };
type BatchOpFields = { op?: string } & Record<string, { key?: unknown } | string | undefined>;

/** Pipeline op names (PipelineRequest's oneof) and the CounterService method each stands for. */
const PIPELINE_METHODS: Readonly<Record<string, string>> = {
  add: "add",
  set: "set",
  reset: "reset",
  compareAndSet: "compareAndSet",
  batch: "addBatch",
  get: "get",
  getMany: "getMany",
  windowRange: "windowRange",
  windowAt: "windowAt",
  uniqueCount: "uniqueCount",
  topK: "topK",
  aggregate: "aggregate",
};

const ANY_KEY = new Uint8Array(0);

/**
 * The bytes of a key field as the decoders read them. A missing or malformed key becomes the
 * empty key, which only an unscoped grant covers; such a request fails validation anyway.
 */
function keyOf(raw: unknown): Uint8Array {
  return raw instanceof Uint8Array ? raw : ANY_KEY;
}

function keysOf(raw: unknown): Uint8Array[] {
  return Array.isArray(raw) ? raw.map(keyOf) : [];
}

/**
 * The access a CounterService request needs, read from the decoded protobuf message the same way
 * the request decoders in fields.ts and counter-service.ts read it (`key`, `keys`, `prefix`, `ops[i][ops[i].op].key`,
 * the keys inside `packed_adds`).
 * A method without a rule here needs admin: new RPCs are closed until someone decides.
 */
export function counterAccess(method: string, request: unknown): Access {
  const r = (request ?? {}) as KeyFields;
  switch (method) {
    case "add":
    case "set":
    case "reset":
    case "compareAndSet":
      return { kind: "keys", role: "write", keys: [keyOf(r.key)] };
    case "addBatch": {
      const ops: (BatchOpFields | undefined)[] = Array.isArray(r.ops) ? r.ops : [];
      const keys = ops.map((op) => keyOf(op?.op === undefined ? undefined : (op[op.op] as { key?: unknown } | undefined)?.key));
      // The packed form (BatchRequest.packed_adds) names its keys inside the bytes; op i is keys[i].
      if (r.packedAdds instanceof Uint8Array && r.packedAdds.length > 0) keys.push(...packedAddKeys(r.packedAdds, ANY_KEY));
      return { kind: "keys", role: "write", keys, batch: true };
    }
    case "eventualAdd": {
      const ops: unknown[] = Array.isArray(r.ops) ? r.ops : [];
      const keys = ops.map((op) => keyOf((op as { key?: unknown } | undefined)?.key));
      if (r.packedAdds instanceof Uint8Array && r.packedAdds.length > 0) keys.push(...packedAddKeys(r.packedAdds, ANY_KEY));
      return { kind: "keys", role: "write", keys, batch: true };
    }
    case "eventualGet":
      return { kind: "keys", role: "read", keys: [keyOf(r.key)] };
    case "registerSession":
    case "keepAlive":
      return { kind: "some", roles: ["write"] };
    case "get":
    case "windowRange":
    case "windowAt":
      return { kind: "keys", role: "read", keys: [keyOf(r.key)] };
    case "getMany":
    case "uniqueCount":
      return { kind: "keys", role: "read", keys: keysOf(r.keys) };
    case "topK":
    case "aggregate":
      return { kind: "prefix", role: "read", prefix: keyOf(r.prefix) };
    case "watch":
      return r.prefix === true
        ? { kind: "prefix", role: "read", prefix: keyOf(r.key) }
        : { kind: "keys", role: "read", keys: [keyOf(r.key)] };
    case "routes":
      // The shard map holds no counter data, and every client needs it to route. Its hot counters
      // are keys: each caller sees only those it holds a role on (AuthGate.keyVisibility).
      return { kind: "some", roles: ["read", "write"] };
    default:
      return { kind: "admin" };
  }
}

/**
 * Heartbeat and ShardChange carry the metadata protocol between nodes, and ForwardWrite a write with
 * its caller's verified name (forwarding.ts: only a node may name the owner); everything else is admin.
 */
export function adminAccess(method: string): Access {
  return method === "heartbeat" || method === "shardChange" || method === "forwardWrite" ? { kind: "internal" } : { kind: "admin" };
}

// ---- the caller of a request, for session ownership ----

/**
 * The authenticated caller's name, stamped by the server on a decoded request (and on its header)
 * before the handler runs. A symbol key: protobuf decoding never produces one, so no client can
 * set or forge it. Absent = "" (a cluster without auth: every caller is the same anonymous owner).
 */
const CALLER = Symbol("tally.caller");

/** Records `caller` on the request and on its header, if any (sessions are owned by their registering caller). */
export function stampCaller(request: unknown, caller: string): void {
  if (request === undefined || request === null || typeof request !== "object" || caller === "") return;
  (request as Record<symbol, unknown>)[CALLER] = caller;
  const header: unknown = (request as { header?: unknown }).header;
  if (header !== undefined && header !== null && typeof header === "object") (header as Record<symbol, unknown>)[CALLER] = caller;
}

/** The caller stamped on a request or header; "" when none was (auth off). */
export function callerOf(request: unknown): string {
  const caller: unknown = request === undefined || request === null ? undefined : (request as Record<symbol, unknown>)[CALLER];
  return typeof caller === "string" ? caller : "";
}

// ---- the hook into grpc-js ----

/** A Pipeline stream's caller, authenticated once when the stream opens. */
export type PipelineCaller =
  { principal: Principal; peer: string; refused?: undefined } | { principal?: undefined; refused: TallyError; peer: string };

type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

function peerCertificate(call: AnyCall): PeerCertificate | undefined {
  return call.getAuthContext()?.sslPeerCertificate;
}

/**
 * The per-server gate: wraps a service's unary and server-streaming handlers with the check, and
 * lets the Pipeline handler check op by op. Denials are logged with the principal's name only.
 */
export class AuthGate {
  constructor(
    private readonly authorizer: Authorizer,
    private readonly log: Logger,
  ) {}

  /** Principals of calls authenticated at admission (authenticateCall), by the call's metadata object. */
  private readonly principals = new WeakMap<grpc.Metadata, Principal>();

  /**
   * Authenticates a call from its metadata and TLS certificate alone, before any byte of its
   * request is read (admission.ts), and remembers the principal for the call's later checks (the
   * handler's call carries the same metadata object). Returns the typed error of a refusal.
   */
  authenticateCall(
    metadata: grpc.Metadata,
    certificate: PeerCertificate | undefined,
    method: string,
    peer: string,
  ): TallyError | undefined {
    try {
      this.principals.set(metadata, this.authorizer.authenticate(metadata, certificate));
      return undefined;
    } catch (error) {
      return this.denied(error, method, undefined, peer);
    }
  }

  /** The call's principal: the one admission found, else authenticated now. Throws UnauthenticatedError. */
  private principalOf(call: AnyCall): Principal {
    return this.principals.get(call.metadata) ?? this.authorizer.authenticate(call.metadata, peerCertificate(call));
  }

  /**
   * Which keys of the routing map (its hot counters) the caller may see: those it holds a role on
   * (read or write on a prefix of the key, or admin). Routes needs only some role, so without this
   * any caller would learn every hot key in the cluster.
   */
  keyVisibility(call: AnyCall): (key: Uint8Array) => boolean {
    const principal = this.principalOf(call);
    return (key) =>
      principal.grants.some(
        (grant) => grant.roles.has("admin") || ((grant.roles.has("read") || grant.roles.has("write")) && keyHasPrefix(key, grant.prefix)),
      );
  }

  /** Authenticates and authorizes one call; returns the typed error of a denial. */
  check(call: AnyCall, method: string, access: (request: unknown) => Access, request: unknown): TallyError | undefined {
    let principal: Principal;
    try {
      principal = this.principalOf(call);
    } catch (error) {
      return this.denied(error, method, undefined, call.getPeer());
    }
    try {
      this.authorizer.authorize(principal, access(request), method);
    } catch (error) {
      return this.denied(error, method, principal, call.getPeer());
    }
    return undefined;
  }

  /**
   * The name of the principal making an admitted call (the gate already authenticated it; a call
   * that reached a handler authenticates). Used to own and check sessions.
   */
  callerName(call: AnyCall): string {
    return this.principalOf(call).name;
  }

  private denied(error: unknown, method: string, principal: Principal | undefined, peer: string): TallyError {
    if (!(error instanceof TallyError)) throw error;
    this.log.warn({ method, principal: principal?.name, peer, code: error.code, reason: error.message }, "request denied");
    return error;
  }

  /**
   * `implementation` with every handler behind the check (a denied call never reaches it). A
   * streaming-request call is checked once, before its first message, with no request (its rule
   * must not need one), except the methods in `perOp` (Pipeline): they authenticate once per
   * stream and check op by op (pipelineCaller, pipelineDenial).
   */
  guard(
    definition: grpc.ServiceDefinition,
    implementation: grpc.UntypedServiceImplementation,
    access: (method: string, request: unknown) => Access,
    perOp: readonly string[] = [],
  ): grpc.UntypedServiceImplementation {
    const guarded: grpc.UntypedServiceImplementation = {};
    for (const [name, attributes] of Object.entries(definition)) {
      const key = name in implementation ? name : (attributes.originalName ?? name);
      const handler = implementation[key];
      if (handler === undefined) continue;
      const method = attributes.originalName ?? name;
      const rule = (request: unknown) => access(method, request);
      if (attributes.requestStream && perOp.includes(method)) {
        guarded[key] = handler;
      } else if (attributes.requestStream && attributes.responseStream) {
        const bidi = handler as grpc.handleBidiStreamingCall<unknown, unknown>;
        guarded[key] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
          const denied = this.check(call, method, rule, undefined);
          if (denied !== undefined) failStream(call, denied, this.log);
          else bidi(call);
        };
      } else if (attributes.requestStream) {
        const upload = handler as grpc.handleClientStreamingCall<unknown, unknown>;
        guarded[key] = (call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const denied = this.check(call, method, rule, undefined);
          if (denied !== undefined) callback(toServiceError(denied, this.log));
          else upload(call, callback);
        };
      } else if (attributes.responseStream) {
        const stream = handler as grpc.handleServerStreamingCall<unknown, unknown>;
        guarded[key] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
          const denied = this.check(call, method, rule, call.request);
          if (denied !== undefined) failStream(call, denied, this.log);
          else stream(call);
        };
      } else {
        const unary = handler as grpc.handleUnaryCall<unknown, unknown>;
        guarded[key] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const denied = this.check(call, method, rule, call.request);
          if (denied !== undefined) callback(toServiceError(denied, this.log));
          else unary(call, callback);
        };
      }
    }
    return guarded;
  }

  /** Who opened a Pipeline stream (credentials are per stream), or why no one may use it. */
  pipelineCaller(call: AnyCall): PipelineCaller {
    const peer = call.getPeer();
    try {
      return { principal: this.principalOf(call), peer };
    } catch (error) {
      return { refused: this.denied(error, "pipeline", undefined, peer), peer };
    }
  }

  /**
   * The error frame for a Pipeline op its caller may not make (the stream goes on), else
   * undefined. A frame with no op at all is left to the handler, which refuses it.
   */
  pipelineDenial(caller: PipelineCaller, request: PipelineRequestMessage): PipelineResponseInput | undefined {
    const id = request.id ?? "0";
    if (caller.principal === undefined) return { id, error: errorToErrorInfo(caller.refused) };
    if (typeof request.op !== "string") return undefined;
    // An op this table does not know (a newer one) falls to counterAccess's default: admin.
    const method = PIPELINE_METHODS[request.op] ?? request.op;
    try {
      this.authorizer.authorize(caller.principal, counterAccess(method, request[request.op]), method);
      return undefined;
    } catch (error) {
      const info: ErrorInfo = errorToErrorInfo(this.denied(error, method, caller.principal, caller.peer));
      return { id, error: info };
    }
  }
}

/** The server's gate, or undefined when the config has no auth section (no checks, no cost). */
export function authGateFor(config: ClusterConfig, log: Logger): AuthGate | undefined {
  const authorizer = authorizerFor(config);
  return authorizer === undefined ? undefined : new AuthGate(authorizer, log);
}

/** `implementation` behind the gate, or unchanged when there is none. */
export function guardService(
  gate: AuthGate | undefined,
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  access: (method: string, request: unknown) => Access,
  perOp: readonly string[] = [],
): grpc.UntypedServiceImplementation {
  return gate === undefined ? implementation : gate.guard(definition, implementation, access, perOp);
}
