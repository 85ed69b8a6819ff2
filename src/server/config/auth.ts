/**
 * Access control policy (cluster.yaml `auth:`), as tls.ts is the `tls:` section made into
 * credentials. A caller is a named principal: a bearer token (`authorization: Bearer <token>` call
 * metadata, matched by SHA-256 in constant time), a verified mTLS client certificate mapped by CN
 * or SAN, or a node of this cluster (the internal token, or a node certificate when
 * tls.clientAuth is "require"). Each principal holds grants `{ prefix, roles }`; a request needs
 * its role on EVERY key it touches, so a batch with one forbidden op is refused whole. Logs and
 * messages name the principal, never a secret.
 *
 * The node core uses this file for its own credentials (the internal token on node-to-node calls,
 * the peer secret); the client port applies it to each call in src/server/rpc/auth-gate.ts.
 */
import * as grpc from "@grpc/grpc-js";
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { PeerCertificate } from "node:tls";
import { isReservedKey, keyHasPrefix } from "../../shard/keys.js";
import { tokenDigest } from "../../util/auth-token.js";
import { PermissionDeniedError, UnauthenticatedError } from "../../util/errors.js";
import { nodeIdOfCertificate } from "../../util/tls.js";
import { ConfigError, type AuthGrant, type AuthRole, type AuthSettings, type ClusterConfig } from "./config.js";

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
    this.tokens = settings.tokens.map((token) => ({
      digest: Buffer.from(token.sha256, "hex"),
      principal: principalOf(token.name, token.grants),
    }));
    if (internalToken !== undefined) {
      this.tokens.push({ digest: tokenDigest(internalToken), principal: INTERNAL("internal") });
    }
    for (const certificate of settings.certificates)
      this.certificates.set(certificate.identity, principalOf(certificate.name, certificate.grants));
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
      throw new UnauthenticatedError(
        `client certificate ${JSON.stringify(certificate.subject?.CN ?? "")} is not mapped to any role (auth.certificates)`,
      );
    }
    throw new UnauthenticatedError(
      "no credentials: send authorization: Bearer <token>" + (this.certificatesVerified ? " or a mapped client certificate" : ""),
    );
  }

  /** Throws PermissionDeniedError unless the principal may make this request. */
  authorize(principal: Principal, access: Access, method: string): void {
    const who = `${principal.internal ? "node" : "caller"} "${principal.name}"`;
    switch (access.kind) {
      case "internal":
        if (!principal.internal) throw new PermissionDeniedError(`${who}: ${method} is for the cluster's own nodes`);
        return;
      case "admin":
        if (!principal.grants.some((grant) => grant.roles.has("admin")))
          throw new PermissionDeniedError(`${who} has no admin role (${method})`);
        return;
      case "some":
        if (!principal.grants.some((grant) => access.roles.some((role) => grant.roles.has(role)))) {
          throw new PermissionDeniedError(`${who} has no ${access.roles.join(" or ")} role on any key (${method})`);
        }
        return;
      case "prefix":
        if (!principal.grants.some((grant) => grant.roles.has(access.role) && keyHasPrefix(access.prefix, grant.prefix))) {
          throw new PermissionDeniedError(
            `${who} has no ${access.role} role on every key under prefix ${printable(access.prefix)} (${method})`,
          );
        }
        return;
      case "keys":
        for (let i = 0; i < access.keys.length; i++) {
          const key = access.keys[i]!;
          const reserved = access.role === "write" && !principal.internal && isReservedKey(key);
          if (!reserved && principal.grants.some((grant) => grant.roles.has(access.role) && keyHasPrefix(key, grant.prefix))) continue;
          const where = access.batch ? `ops[${i}] ` : "";
          const error = new PermissionDeniedError(
            reserved
              ? `${where}key ${printable(key)} is reserved for the cluster's own use (a key starting \\0tally:); only a node writes it (${method}); nothing was applied`
              : `${who} has no ${access.role} role on ${where}key ${printable(key)} (${method}); nothing was applied`,
          );
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
    const internalToken =
      settings.internalTokenFile === undefined ? undefined : readInternalToken(settings.internalTokenFile, config.source);
    if (internalToken !== undefined && settings.tokens.some((token) => token.sha256 === tokenDigest(internalToken).toString("hex"))) {
      throw new ConfigError(
        `${config.source}: auth.internalTokenFile holds a token that is also in auth.tokens; the internal token must be the nodes' alone`,
      );
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
    throw new ConfigError(
      `${source}: auth.internalTokenFile: ${path} must hold one token of at least ${INTERNAL_TOKEN_CHARS_MIN} printable characters (tallyctl auth hash-token makes one)`,
    );
  }
  return token;
}

function principalOf(name: string, grants: readonly AuthGrant[]): Principal {
  return {
    name,
    internal: false,
    grants: grants.map((grant) => ({ prefix: Buffer.from(grant.prefix, "utf8"), roles: new Set(grant.roles) })),
  };
}

/**
 * A node of the cluster. Besides admin, it reads and writes every key: a node flushes the eventual
 * adds it buffered (src/server/eventual/flusher.ts) into their shards as its own client (sessions
 * and AddBatch under this principal), after each add's caller was authorized for its key on entry.
 */
function INTERNAL(name: string): Principal {
  return { name, internal: true, grants: [{ prefix: Buffer.alloc(0), roles: new Set<AuthRole>(["admin", "read", "write"]) }] };
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
