/**
 * Access control on the client port (cluster.yaml `auth:`). A caller is a named principal: a bearer
 * token (`authorization: Bearer <token>` call metadata, matched by SHA-256 in constant time), a
 * verified mTLS client certificate mapped by CN or SAN, or a node of this cluster (the internal
 * token, or a node certificate when tls.clientAuth is "require"). Each principal holds grants
 * `{ prefix, roles }`; a request needs its role on EVERY key it touches, so a batch with one
 * forbidden op is refused whole. Credentials are checked from the call's metadata and certificate
 * before any byte of the request is read (admission.ts: UNAUTHENTICATED for none or unknown ones);
 * roles, which depend on the keys, after it is decoded and before it becomes a command
 * (PERMISSION_DENIED). Either way nothing is applied. The routing map shows each caller only the
 * hot counters it holds a role on. Logs name the principal, never a secret.
 */
import * as grpc from "@grpc/grpc-js";
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { PeerCertificate } from "node:tls";
import { errorToErrorInfo, type ErrorInfo } from "../api/error-details.js";
import { tokenDigest } from "../util/auth-token.js";
import { packedAddKeys } from "../util/packed-adds.js";
import { PermissionDeniedError, TallyError, UnauthenticatedError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { nodeIdOfCertificate } from "../util/tls.js";
import { ConfigError, type AuthGrant, type AuthRole, type AuthSettings, type ClusterConfig } from "./config.js";
import { failStream, toServiceError } from "./errors.js";

interface Grant {
  prefix: Buffer;
  roles: ReadonlySet<AuthRole>;
}

export interface Principal {
  /** The token's or certificate's name from cluster.yaml, or node-<id> / "internal". */
  name: string;
  /** A node of this cluster: the only caller of Heartbeat and ShardChange. */
  internal: boolean;
  grants: readonly Grant[];
}

/** What a request needs. */
export type Access =
  /** The role on every key (a batch: keys[i] is ops[i]). */
  | { kind: "keys"; role: "read" | "write"; keys: readonly Uint8Array[]; batch?: boolean }
  /** The role on every key that starts with prefix: a grant whose prefix is a prefix of it. */
  | { kind: "prefix"; role: "read"; prefix: Uint8Array }
  /** One of the roles on anything (sessions, the routing map). */
  | { kind: "some"; roles: readonly AuthRole[] }
  | { kind: "admin" }
  /** Node-to-node calls only. */
  | { kind: "internal" };

/** Smallest internal token accepted: it guards every admin RPC. */
const INTERNAL_TOKEN_CHARS_MIN = 32;
const BEARER = /^Bearer ([\x21-\x7e]+)$/i;

export class Authorizer {
  private readonly tokens: Array<{ digest: Buffer; principal: Principal }>;
  private readonly certificates = new Map<string, Principal>();
  /** Client certificates are verified only under clientAuth: require; otherwise none is trusted. */
  private readonly certificatesVerified: boolean;

  /** `internalToken`: the raw secret this node presents to other nodes (and accepts from them). */
  constructor(
    settings: AuthSettings,
    certificatesVerified: boolean,
    readonly internalToken: string | undefined,
  ) {
    this.certificatesVerified = certificatesVerified;
    this.tokens = settings.tokens.map((token) => ({ digest: Buffer.from(token.sha256, "hex"), principal: principalOf(token.name, token.grants) }));
    if (internalToken !== undefined) {
      this.tokens.push({ digest: tokenDigest(internalToken), principal: INTERNAL("internal") });
    }
    for (const certificate of settings.certificates) this.certificates.set(certificate.identity, principalOf(certificate.name, certificate.grants));
  }

  /**
   * Who is calling. A bearer token wins over a certificate. Throws UnauthenticatedError; the
   * message never repeats the token.
   */
  authenticate(metadata: grpc.Metadata, certificate: PeerCertificate | undefined): Principal {
    const values = metadata.get("authorization");
    if (values.length > 1) throw new UnauthenticatedError("more than one authorization header");
    const header = values[0];
    if (header !== undefined) {
      const match = typeof header === "string" ? BEARER.exec(header) : null;
      if (match === null) throw new UnauthenticatedError('authorization must be "Bearer <token>"');
      const digest = tokenDigest(match[1]!);
      // Every entry is compared (no early exit), each in constant time.
      let found: Principal | undefined;
      for (const entry of this.tokens) if (timingSafeEqual(digest, entry.digest)) found = entry.principal;
      if (found === undefined) throw new UnauthenticatedError("unknown token");
      return found;
    }
    if (this.certificatesVerified && certificate !== undefined && Object.keys(certificate).length > 0) {
      const node = nodeIdOfCertificate(certificate);
      if (node !== undefined) return INTERNAL(`node-${node}`);
      for (const identity of certificateIdentities(certificate)) {
        const principal = this.certificates.get(identity);
        if (principal !== undefined) return principal;
      }
      throw new UnauthenticatedError(`client certificate ${JSON.stringify(certificate.subject?.CN ?? "")} is not mapped to any role (auth.certificates)`);
    }
    throw new UnauthenticatedError("no credentials: send authorization: Bearer <token>" + (this.certificatesVerified ? " or a mapped client certificate" : ""));
  }

  /** Throws PermissionDeniedError unless the principal may make this request. */
  authorize(principal: Principal, access: Access, method: string): void {
    const who = `${principal.internal ? "node" : "caller"} "${principal.name}"`;
    switch (access.kind) {
      case "internal":
        if (!principal.internal) throw new PermissionDeniedError(`${who}: ${method} is for the cluster's own nodes`);
        return;
      case "admin":
        if (!principal.grants.some((grant) => grant.roles.has("admin"))) throw new PermissionDeniedError(`${who} has no admin role (${method})`);
        return;
      case "some":
        if (!principal.grants.some((grant) => access.roles.some((role) => grant.roles.has(role)))) {
          throw new PermissionDeniedError(`${who} has no ${access.roles.join(" or ")} role on any key (${method})`);
        }
        return;
      case "prefix":
        if (!principal.grants.some((grant) => grant.roles.has(access.role) && hasPrefix(access.prefix, grant.prefix))) {
          throw new PermissionDeniedError(`${who} has no ${access.role} role on every key under prefix ${printable(access.prefix)} (${method})`);
        }
        return;
      case "keys":
        for (let i = 0; i < access.keys.length; i++) {
          const key = access.keys[i]!;
          if (principal.grants.some((grant) => grant.roles.has(access.role) && hasPrefix(key, grant.prefix))) continue;
          const where = access.batch ? `ops[${i}] ` : "";
          const error = new PermissionDeniedError(`${who} has no ${access.role} role on ${where}key ${printable(key)} (${method}); nothing was applied`);
          if (access.batch) (error as PermissionDeniedError & { opIndex?: number }).opIndex = i;
          throw error;
        }
        return;
    }
  }

  /** The call metadata this node sends on its node-to-node AdminService calls. */
  internalMetadata(): grpc.Metadata | undefined {
    if (this.internalToken === undefined) return undefined;
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${this.internalToken}`);
    return metadata;
  }
}

const authorizers = new WeakMap<ClusterConfig, Authorizer | undefined>();

/**
 * The node's authorizer (undefined without an auth section), built once per config. Reads
 * auth.internalTokenFile; throws a ConfigError when it is unreadable or too short.
 */
export function authorizerFor(config: ClusterConfig): Authorizer | undefined {
  if (authorizers.has(config)) return authorizers.get(config);
  const settings = config.auth;
  let authorizer: Authorizer | undefined;
  if (settings !== undefined) {
    const internalToken = settings.internalTokenFile === undefined ? undefined : readInternalToken(settings.internalTokenFile, config.source);
    if (internalToken !== undefined && settings.tokens.some((token) => token.sha256 === tokenDigest(internalToken).toString("hex"))) {
      throw new ConfigError(`${config.source}: auth.internalTokenFile holds a token that is also in auth.tokens; the internal token must be the nodes' alone`);
    }
    authorizer = new Authorizer(settings, config.tls?.clientAuth === "require", internalToken);
  }
  authorizers.set(config, authorizer);
  return authorizer;
}

/**
 * The secret that authenticates the peer port where TLS does not (src/transport/peer-auth.ts): the
 * internal token, in a cluster with `auth:` and no `tls:` (config validation requires the token
 * there). With `tls:` the node certificates authenticate the peer port (mTLS); with neither it is
 * open, and the transport says so at start-up (docs/security.md).
 */
export function peerSecretFor(config: ClusterConfig): string | undefined {
  if (config.tls !== undefined) return undefined;
  return authorizerFor(config)?.internalToken;
}

/** Metadata for this node's calls to other nodes' AdminService (undefined: none needed). */
export function internalCallMetadata(config: ClusterConfig): grpc.Metadata | undefined {
  return authorizerFor(config)?.internalMetadata();
}

function readInternalToken(path: string, source: string): string {
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new ConfigError(`${source}: auth.internalTokenFile: cannot read ${path}: ${(error as Error).message}`);
  }
  if (token.length < INTERNAL_TOKEN_CHARS_MIN || !/^[\x21-\x7e]+$/.test(token)) {
    throw new ConfigError(`${source}: auth.internalTokenFile: ${path} must hold one token of at least ${INTERNAL_TOKEN_CHARS_MIN} printable characters (tallyctl auth hash-token makes one)`);
  }
  return token;
}

function principalOf(name: string, grants: readonly AuthGrant[]): Principal {
  return { name, internal: false, grants: grants.map((grant) => ({ prefix: Buffer.from(grant.prefix, "utf8"), roles: new Set(grant.roles) })) };
}

function INTERNAL(name: string): Principal {
  return { name, internal: true, grants: [{ prefix: Buffer.alloc(0), roles: new Set<AuthRole>(["admin"]) }] };
}

function hasPrefix(key: Uint8Array, prefix: Buffer): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** A key for a message: UTF-8 when it is printable, else hex; at most 64 characters. */
function printable(key: Uint8Array): string {
  const text = Buffer.from(key).toString("utf8");
  const shown = /^[\x20-\x7e]*$/.test(text) ? JSON.stringify(text) : `0x${Buffer.from(key).toString("hex")}`;
  return shown.length > 64 ? `${shown.slice(0, 61)}...` : shown;
}

/** The names a certificate can be mapped by: subject CN, then every DNS, URI and email SAN. */
function certificateIdentities(certificate: PeerCertificate): string[] {
  const names: string[] = [];
  const cn = certificate.subject?.CN;
  if (typeof cn === "string" && cn.length > 0) names.push(cn);
  for (const entry of (certificate.subjectaltname ?? "").split(/,\s*/)) {
    const match = /^(DNS|URI|email):(.+)$/.exec(entry);
    if (match) names.push(match[2]!);
  }
  return names;
}

// ---- what each RPC touches ----

type Json = Record<string, any>;

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
 * the request decoders in grpc-service.ts read it (`key`, `keys`, `prefix`, `ops[i][ops[i].op].key`,
 * the keys inside `packed_adds`).
 * A method without a rule here needs admin: new RPCs are closed until someone decides.
 */
export function counterAccess(method: string, request: Json | undefined): Access {
  const r = request ?? {};
  switch (method) {
    case "add":
    case "set":
    case "reset":
    case "compareAndSet":
      return { kind: "keys", role: "write", keys: [keyOf(r.key)] };
    case "addBatch": {
      const ops: Json[] = Array.isArray(r.ops) ? r.ops : [];
      const keys = ops.map((op) => keyOf(op?.op === undefined ? undefined : op[op.op]?.key));
      // The packed form (BatchRequest.packed_adds) names its keys inside the bytes; op i is keys[i].
      if (r.packedAdds instanceof Uint8Array && r.packedAdds.length > 0) keys.push(...packedAddKeys(r.packedAdds, ANY_KEY));
      return { kind: "keys", role: "write", keys, batch: true };
    }
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
      return r.prefix === true ? { kind: "prefix", role: "read", prefix: keyOf(r.key) } : { kind: "keys", role: "read", keys: [keyOf(r.key)] };
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
export function stampCaller(request: Json | undefined, caller: string): void {
  if (request === undefined || request === null || typeof request !== "object" || caller === "") return;
  (request as Record<symbol, unknown>)[CALLER] = caller;
  const header: unknown = request.header;
  if (header !== undefined && header !== null && typeof header === "object") (header as Record<symbol, unknown>)[CALLER] = caller;
}

/** The caller stamped on a request or header; "" when none was (auth off). */
export function callerOf(request: Json | undefined): string {
  const caller: unknown = request === undefined || request === null ? undefined : (request as Record<symbol, unknown>)[CALLER];
  return typeof caller === "string" ? caller : "";
}

// ---- the hook into grpc-js ----

/** A Pipeline stream's caller, authenticated once when the stream opens. */
export type PipelineCaller = { principal: Principal; peer: string; refused?: undefined } | { principal?: undefined; refused: TallyError; peer: string };

type AnyCall = grpc.ServerUnaryCall<Json, Json> | grpc.ServerWritableStream<Json, Json> | grpc.ServerReadableStream<Json, Json> | grpc.ServerDuplexStream<Json, Json>;

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
  authenticateCall(metadata: grpc.Metadata, certificate: PeerCertificate | undefined, method: string, peer: string): TallyError | undefined {
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
    return (key) => principal.grants.some((grant) => grant.roles.has("admin") || ((grant.roles.has("read") || grant.roles.has("write")) && hasPrefix(key, grant.prefix)));
  }

  /** Authenticates and authorizes one call; returns the typed error of a denial. */
  check(call: AnyCall, method: string, access: (request: Json | undefined) => Access, request: Json | undefined): TallyError | undefined {
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
    access: (method: string, request: Json | undefined) => Access,
    perOp: readonly string[] = [],
  ): grpc.UntypedServiceImplementation {
    const guarded: grpc.UntypedServiceImplementation = {};
    for (const [name, attributes] of Object.entries(definition)) {
      const key = name in implementation ? name : (attributes.originalName ?? name);
      const handler = implementation[key];
      if (handler === undefined) continue;
      const method = attributes.originalName ?? name;
      const rule = (request: Json | undefined) => access(method, request);
      if (attributes.requestStream && perOp.includes(method)) {
        guarded[key] = handler;
      } else if (attributes.requestStream && attributes.responseStream) {
        const bidi = handler as grpc.handleBidiStreamingCall<Json, Json>;
        guarded[key] = (call: grpc.ServerDuplexStream<Json, Json>) => {
          const denied = this.check(call, method, rule, undefined);
          if (denied !== undefined) failStream(call, denied, this.log);
          else bidi(call);
        };
      } else if (attributes.requestStream) {
        const upload = handler as grpc.handleClientStreamingCall<Json, Json>;
        guarded[key] = (call: grpc.ServerReadableStream<Json, Json>, callback: grpc.sendUnaryData<Json>) => {
          const denied = this.check(call, method, rule, undefined);
          if (denied !== undefined) callback(toServiceError(denied, this.log));
          else upload(call, callback);
        };
      } else if (attributes.responseStream) {
        const stream = handler as grpc.handleServerStreamingCall<Json, Json>;
        guarded[key] = (call: grpc.ServerWritableStream<Json, Json>) => {
          const denied = this.check(call, method, rule, call.request);
          if (denied !== undefined) failStream(call, denied, this.log);
          else stream(call);
        };
      } else {
        const unary = handler as grpc.handleUnaryCall<Json, Json>;
        guarded[key] = (call: grpc.ServerUnaryCall<Json, Json>, callback: grpc.sendUnaryData<Json>) => {
          const denied = this.check(call, method, rule, call.request);
          if (denied !== undefined) callback(toServiceError(denied, this.log));
          else unary(call, callback);
        };
      }
    }
    return guarded;
  }

  /** Who opened a Pipeline stream (credentials are per stream), or why no one may use it. */
  pipelineCaller(call: grpc.ServerDuplexStream<Json, Json>): PipelineCaller {
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
  pipelineDenial(caller: PipelineCaller, request: Json): Json | undefined {
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
  access: (method: string, request: Json | undefined) => Access,
  perOp: readonly string[] = [],
): grpc.UntypedServiceImplementation {
  return gate === undefined ? implementation : gate.guard(definition, implementation, access, perOp);
}
