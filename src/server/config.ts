/**
 * cluster.yaml: loading and validation. Every relationship between settings is checked at start-up
 * (etcd's Config.validate), and every message names the field at fault, so a typo fails loudly
 * before a node opens its data directory.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { evenSlotRanges, type SlotRange } from "../meta/slots.js";
import { SHA256_HEX } from "../util/auth-token.js";

export interface NodeConfig {
  id: number;
  /** host:port for the client API (CounterService, AdminService). */
  client: string;
  /** host:port for node-to-node Raft traffic. */
  peer: string;
  zone: string;
  /** Absolute path. */
  dataDir: string;
  /** With a tls section: this node's certificate chain and key (absolute paths). */
  cert?: string;
  key?: string;
  /** host:port of the operations HTTP server (/metrics, /livez, /readyz); absent = none. */
  metrics?: string;
}

/** The optional `tls:` section. Paths are absolute (given relative to the config file). */
export interface TlsSettings {
  /** CA bundle every node and client certificate must chain to. */
  ca: string;
  /** The client port: `require` a client certificate from the CA (mTLS), or `none` (TLS only). */
  clientAuth: "require" | "none";
  /** Defaults for tallyctl and the test tools: a client certificate and key. */
  client?: { cert: string; key: string };
  /** Seconds between re-reads of the certificate files (SIGHUP re-reads at once). */
  reloadSeconds: number;
}

export type AuthRole = "read" | "write" | "admin";

/** Roles on every key that starts with `prefix` ("" = every key). admin is cluster-wide (prefix ""). */
export interface AuthGrant {
  prefix: string;
  roles: AuthRole[];
}

/** A bearer token, by name; only the SHA-256 (hex) of the secret is in the file. */
export interface AuthToken {
  name: string;
  sha256: string;
  grants: AuthGrant[];
}

/** A verified mTLS client certificate whose CN or a SAN (DNS, URI, email) equals `identity`. */
export interface AuthCertificate {
  name: string;
  identity: string;
  grants: AuthGrant[];
}

/** The optional `auth:` section (src/server/auth.ts). Absent: no access control. */
export interface AuthSettings {
  tokens: AuthToken[];
  certificates: AuthCertificate[];
  /**
   * Absolute path of a file holding the raw internal token every node presents on node-to-node
   * AdminService calls (heartbeats, shard changes, status fan-out). Without a tls section it is
   * also the secret that authenticates the peer port (src/transport/peer-auth.ts). Required
   * unless tls.clientAuth is "require", where the nodes' own certificates identify them.
   */
  internalTokenFile?: string;
}

export interface ClusterSettings {
  name: string;
  replicationFactor: number;
  shards: number;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  leaseDriftTicks: number;
  sessionTimeoutMs: number;
  /**
   * Sessions one authenticated caller may hold per shard (beyond: RESOURCE_EXHAUSTED), so no caller
   * can evict the others' sessions. Replicated-state semantics: every node must use the same value.
   */
  sessionsPerCallerMax: number;
  snapshotEveryEntries: number;
  /** Replicas of the metadata group: the first this many nodes by id (3, or 5 for big clusters). */
  metaReplicas: number;
}

/** The placement controller on the metadata leader (src/server/meta-controller.ts). */
export interface PlacementSettings {
  /** Start moves and leader transfers on its own (false: only what tallyctl asks for). */
  autoRebalance: boolean;
  /** A node silent this long is marked down and its replicas are re-created elsewhere. */
  downAfterMs: number;
  /** Replica moves running at once (rate limit). */
  maxConcurrentMoves: number;
  /** How often every node reports to the metadata leader (and learns the map). */
  heartbeatMs: number;
  /** A new replica that has not caught up by then is removed again and its move aborted. */
  catchUpTimeoutMs: number;
  /** Minimum time between two automatic leader transfers of one shard. */
  leaderTransferCooldownMs: number;
  /** A shard whose leader applies more than this many mutations/s (sustained) is split; 0 = never. */
  splitOpsPerSecond: number;
  /** How long a shard must stay above splitOpsPerSecond before it is split. */
  splitSustainMs: number;
}

export interface Limits {
  maxKeyBytes: number;
  maxBatchOps: number;
  maxPendingProposalsPerShard: number;
  maxEntryBytes: number;
  maxInflightMessages: number;
  maxInflightBytes: number;
  maxSizePerMsgBytes: number;
  requestTimeoutMs: number;
  /** Requests in flight from one client connection, and from one session, before OVERLOADED. */
  maxInflightPerClient: number;
  /** Requests in flight on the whole node (every connection) before OVERLOADED (docs/limits.md). */
  maxInflightPerNode: number;
  /** Calls one connection may have open at once (HTTP/2 max concurrent streams): the client queues the rest. */
  maxStreamsPerConnection: number;
  /**
   * Largest request message the client port accepts (gRPC max_receive_message_length, checked on
   * the length prefix before the message is buffered). The default holds a full 10,000-op batch.
   */
  maxRequestBytes: number;
}

export interface ShardPlacement {
  shardId: number;
  slots: SlotRange;
  epoch: number;
  /** Raft node ids of the replicas, all voters. */
  replicas: number[];
}

export interface ClusterConfig {
  /** Absolute path of the file it came from (or "<inline>"). */
  source: string;
  cluster: ClusterSettings;
  limits: Limits;
  placement: PlacementSettings;
  nodes: NodeConfig[];
  /** Absent: plaintext everywhere. Present: TLS on the client port, mTLS between nodes. */
  tls?: TlsSettings;
  /** Absent: every caller may do everything (access control off). */
  auth?: AuthSettings;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

const clusterDefaults: ClusterSettings = {
  name: "local",
  replicationFactor: 3,
  shards: 8,
  tickMs: 20,
  electionTicks: 25,
  heartbeatTicks: 5,
  leaseDriftTicks: 5,
  sessionTimeoutMs: 600_000,
  sessionsPerCallerMax: 10_000,
  snapshotEveryEntries: 10_000,
  metaReplicas: 3,
};

const placementDefaults: PlacementSettings = {
  autoRebalance: true,
  downAfterMs: 30_000,
  maxConcurrentMoves: 2,
  heartbeatMs: 300,
  catchUpTimeoutMs: 120_000,
  leaderTransferCooldownMs: 10_000,
  splitOpsPerSecond: 20_000,
  splitSustainMs: 10_000,
};

const limitDefaults: Limits = {
  maxKeyBytes: 256,
  maxBatchOps: 10_000,
  maxPendingProposalsPerShard: 100_000,
  maxEntryBytes: 4 * 1024 * 1024,
  maxInflightMessages: 256,
  maxInflightBytes: 32 * 1024 * 1024,
  maxSizePerMsgBytes: 1024 * 1024,
  requestTimeoutMs: 5_000,
  maxInflightPerClient: 500,
  // 1,000 reads answered in one run held a node's thread ~0.16 s; 4,000 held it 1.1 s and cost
  // the shard its leader (docs/limits.md).
  maxInflightPerNode: 1_000,
  // The least RFC 9113 recommends; calls arriving together cost ~0.1 ms each even when refused.
  maxStreamsPerConnection: 100,
  // 10,000 ops with 256-byte keys and every field set encode to ~2.9 MiB.
  maxRequestBytes: 4 * 1024 * 1024,
};

export function loadClusterConfig(path: string): ClusterConfig {
  const source = resolve(path);
  let text: string;
  try {
    text = readFileSync(source, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read cluster config ${source}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${source}: not valid YAML: ${(error as Error).message}`);
  }
  return parseClusterConfig(document, source);
}

export function parseClusterConfig(document: unknown, source = "<inline>"): ClusterConfig {
  const where = (field: string) => `${source}: ${field}`;
  const root = asObject(document, where("(top level)"));
  rejectUnknown(root, ["cluster", "limits", "placement", "nodes", "tls", "auth"], where("(top level)"));

  const clusterRaw = root.cluster === undefined ? {} : asObject(root.cluster, where("cluster"));
  rejectUnknown(clusterRaw, Object.keys(clusterDefaults), where("cluster"));
  const cluster = { ...clusterDefaults };
  for (const key of Object.keys(clusterDefaults) as Array<keyof ClusterSettings>) {
    const value = clusterRaw[key];
    if (value === undefined) continue;
    if (key === "name") {
      if (typeof value !== "string" || value.length === 0) throw new ConfigError(`${where("cluster.name")} must be a non-empty string`);
      cluster.name = value;
    } else {
      cluster[key] = positiveInteger(value, where(`cluster.${key}`));
    }
  }

  const limitsRaw = root.limits === undefined ? {} : asObject(root.limits, where("limits"));
  rejectUnknown(limitsRaw, Object.keys(limitDefaults), where("limits"));
  const limits = { ...limitDefaults };
  for (const key of Object.keys(limitDefaults) as Array<keyof Limits>) {
    if (limitsRaw[key] !== undefined) limits[key] = positiveInteger(limitsRaw[key], where(`limits.${key}`));
  }

  const placementRaw = root.placement === undefined ? {} : asObject(root.placement, where("placement"));
  rejectUnknown(placementRaw, Object.keys(placementDefaults), where("placement"));
  const placement = { ...placementDefaults };
  for (const key of Object.keys(placementDefaults) as Array<keyof PlacementSettings>) {
    const value = placementRaw[key];
    if (value === undefined) continue;
    if (key === "autoRebalance") {
      if (typeof value !== "boolean") throw new ConfigError(`${where("placement.autoRebalance")} must be true or false, got ${JSON.stringify(value)}`);
      placement.autoRebalance = value;
    } else if (key === "splitOpsPerSecond" && value === 0) {
      placement.splitOpsPerSecond = 0;
    } else {
      placement[key] = positiveInteger(value, where(`placement.${key}`));
    }
  }

  if (!Array.isArray(root.nodes) || root.nodes.length === 0) {
    throw new ConfigError(`${where("nodes")} must be a non-empty list`);
  }
  const baseDir = source === "<inline>" ? process.cwd() : dirname(source);
  const tls = root.tls === undefined ? undefined : parseTls(root.tls, baseDir, where);
  const nodes: NodeConfig[] = root.nodes.map((raw, i) => {
    const field = `nodes[${i}]`;
    const node = asObject(raw, where(field));
    rejectUnknown(node, ["id", "client", "peer", "zone", "dataDir", "cert", "key", "metrics"], where(field));
    const id = positiveInteger(node.id, where(`${field}.id`));
    const dataDirRaw = node.dataDir ?? `data/n${id}`;
    if (typeof dataDirRaw !== "string" || dataDirRaw.length === 0) throw new ConfigError(`${where(`${field}.dataDir`)} must be a path`);
    const parsed: NodeConfig = {
      id,
      client: address(node.client, where(`${field}.client`)),
      peer: address(node.peer, where(`${field}.peer`)),
      zone: typeof node.zone === "string" && node.zone.length > 0 ? node.zone : "default",
      dataDir: isAbsolute(dataDirRaw) ? dataDirRaw : resolve(baseDir, dataDirRaw),
    };
    if (node.metrics !== undefined) parsed.metrics = address(node.metrics, where(`${field}.metrics`));
    for (const kind of ["cert", "key"] as const) {
      if (node[kind] === undefined) {
        if (tls !== undefined) throw new ConfigError(`${where(`${field}.${kind}`)} is required when the tls section is present`);
        continue;
      }
      if (tls === undefined) throw new ConfigError(`${where(`${field}.${kind}`)} needs a top-level tls section (tls.ca)`);
      parsed[kind] = filePath(node[kind], baseDir, where(`${field}.${kind}`));
    }
    return parsed;
  });

  // Default: 3 metadata replicas, or 1 for a cluster of one or two nodes.
  if (clusterRaw.metaReplicas === undefined) cluster.metaReplicas = nodes.length >= 3 ? 3 : 1;
  const config: ClusterConfig = { source, cluster, limits, placement, nodes };
  if (tls !== undefined) config.tls = tls;
  if (root.auth !== undefined) config.auth = parseAuth(root.auth, baseDir, tls, where);
  validateClusterConfig(config);
  return config;
}

export function validateClusterConfig(config: ClusterConfig): void {
  const { cluster, limits, nodes, source } = config;
  const fail = (message: string): never => {
    throw new ConfigError(`${source}: ${message}`);
  };
  const ids = new Set<number>();
  const addresses = new Map<string, string>();
  const dataDirs = new Set<string>();
  nodes.forEach((node, i) => {
    if (ids.has(node.id)) fail(`nodes[${i}].id: duplicate node id ${node.id}`);
    ids.add(node.id);
    for (const kind of ["client", "peer", "metrics"] as const) {
      const value = node[kind];
      if (value === undefined) continue;
      const owner = addresses.get(value);
      if (owner !== undefined) fail(`nodes[${i}].${kind}: address ${value} is already used by ${owner}`);
      addresses.set(value, `nodes[${i}].${kind}`);
    }
    if (dataDirs.has(node.dataDir)) fail(`nodes[${i}].dataDir: ${node.dataDir} is shared with another node`);
    dataDirs.add(node.dataDir);
  });
  if (cluster.replicationFactor > nodes.length) {
    fail(`cluster.replicationFactor (${cluster.replicationFactor}) exceeds the number of nodes (${nodes.length})`);
  }
  if (cluster.metaReplicas > nodes.length) {
    fail(`cluster.metaReplicas (${cluster.metaReplicas}) exceeds the number of nodes (${nodes.length})`);
  }
  if (cluster.metaReplicas % 2 === 0 || cluster.metaReplicas > 7) fail(`cluster.metaReplicas (${cluster.metaReplicas}) must be 1, 3, 5 or 7`);
  if (config.placement.heartbeatMs * 3 > config.placement.downAfterMs) {
    fail(`placement.downAfterMs (${config.placement.downAfterMs}) must be at least 3 x placement.heartbeatMs (${config.placement.heartbeatMs})`);
  }
  if (cluster.shards > 1024) fail(`cluster.shards (${cluster.shards}) must be at most 1024`);
  if (cluster.electionTicks <= cluster.heartbeatTicks) {
    fail(`cluster.electionTicks (${cluster.electionTicks}) must be greater than cluster.heartbeatTicks (${cluster.heartbeatTicks})`);
  }
  if (cluster.leaseDriftTicks >= cluster.electionTicks) {
    fail(`cluster.leaseDriftTicks (${cluster.leaseDriftTicks}) must be less than cluster.electionTicks (${cluster.electionTicks})`);
  }
  if (cluster.tickMs < 1 || cluster.tickMs > 1000) fail(`cluster.tickMs (${cluster.tickMs}) must be in [1, 1000]`);
  if (limits.maxKeyBytes > 256) fail(`limits.maxKeyBytes (${limits.maxKeyBytes}) must be at most 256`);
  if (limits.maxBatchOps > 10_000) fail(`limits.maxBatchOps (${limits.maxBatchOps}) must be at most 10000`);
  if (limits.maxSizePerMsgBytes > limits.maxInflightBytes) {
    fail(`limits.maxSizePerMsgBytes (${limits.maxSizePerMsgBytes}) must not exceed limits.maxInflightBytes (${limits.maxInflightBytes})`);
  }
  if (limits.maxEntryBytes > 64 * 1024 * 1024) fail(`limits.maxEntryBytes (${limits.maxEntryBytes}) must be at most 64 MiB`);
  if (limits.maxRequestBytes < 4096 || limits.maxRequestBytes > 256 * 1024 * 1024) {
    fail(`limits.maxRequestBytes (${limits.maxRequestBytes}) must be between 4096 and 256 MiB`);
  }
  if (limits.maxInflightPerClient > limits.maxInflightPerNode) {
    fail(`limits.maxInflightPerClient (${limits.maxInflightPerClient}) must not exceed limits.maxInflightPerNode (${limits.maxInflightPerNode})`);
  }
}

/** The metadata group's replicas: the first cluster.metaReplicas node ids (stable as nodes are added). */
export function metaReplicaIds(config: ClusterConfig): number[] {
  return config.nodes.map((node) => node.id).sort((a, b) => a - b).slice(0, config.cluster.metaReplicas);
}

/**
 * The initial shard placement, proposed once by the first metadata leader (the map is the
 * authority afterwards): the shards' replica slots
 * are dealt to nodes in turn, RF consecutive nodes per shard, so every shard has RF distinct
 * replicas and replica counts per node differ by at most one.
 */
export function computePlacement(config: ClusterConfig): ShardPlacement[] {
  const ranges = evenSlotRanges(config.cluster.shards);
  const nodeIds = config.nodes.map((node) => node.id).sort((a, b) => a - b);
  return ranges.map((slots, i) => ({ shardId: i + 1, slots, epoch: 1, replicas: dealReplicas(nodeIds, config.cluster.replicationFactor, i) }));
}

/** The replicas of the i-th shard: `replicationFactor` consecutive node ids (sorted ids), dealt in turn. */
export function dealReplicas(sortedNodeIds: number[], replicationFactor: number, i: number): number[] {
  const replicas: number[] = [];
  for (let k = 0; k < replicationFactor; k++) replicas.push(sortedNodeIds[(i * replicationFactor + k) % sortedNodeIds.length]!);
  return replicas.sort((a, b) => a - b);
}

export function findNode(config: ClusterConfig, id: number): NodeConfig {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) {
    throw new ConfigError(`${config.source}: unknown node ${id}; the config has nodes ${config.nodes.map((n) => n.id).join(", ")}`);
  }
  return node;
}

function parseTls(raw: unknown, baseDir: string, where: (field: string) => string): TlsSettings {
  const section = asObject(raw, where("tls"));
  rejectUnknown(section, ["ca", "clientAuth", "client", "reloadSeconds"], where("tls"));
  const clientAuth = section.clientAuth ?? "require";
  if (clientAuth !== "require" && clientAuth !== "none") {
    throw new ConfigError(`${where("tls.clientAuth")} must be "require" or "none", got ${JSON.stringify(clientAuth)}`);
  }
  const tls: TlsSettings = {
    ca: filePath(section.ca, baseDir, where("tls.ca")),
    clientAuth,
    reloadSeconds: section.reloadSeconds === undefined ? 30 : positiveInteger(section.reloadSeconds, where("tls.reloadSeconds")),
  };
  if (section.client !== undefined) {
    const client = asObject(section.client, where("tls.client"));
    rejectUnknown(client, ["cert", "key"], where("tls.client"));
    tls.client = { cert: filePath(client.cert, baseDir, where("tls.client.cert")), key: filePath(client.key, baseDir, where("tls.client.key")) };
  }
  return tls;
}

const AUTH_ROLES: readonly AuthRole[] = ["read", "write", "admin"];
const AUTH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function parseAuth(raw: unknown, baseDir: string, tls: TlsSettings | undefined, where: (field: string) => string): AuthSettings {
  const section = asObject(raw, where("auth"));
  rejectUnknown(section, ["tokens", "certificates", "internalTokenFile"], where("auth"));
  const names = new Set<string>();
  const entry = (item: unknown, field: string): { object: Record<string, unknown>; name: string; grants: AuthGrant[] } => {
    const object = asObject(item, where(field));
    const name = object.name;
    if (typeof name !== "string" || !AUTH_NAME.test(name)) throw new ConfigError(`${where(`${field}.name`)} must be 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit), got ${JSON.stringify(name)}`);
    if (names.has(name)) throw new ConfigError(`${where(`${field}.name`)}: "${name}" is used twice (names appear in logs and must say who it was)`);
    names.add(name);
    return { object, name, grants: parseGrants(object.grants, `${field}.grants`, where) };
  };
  const list = (value: unknown, field: string): unknown[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw new ConfigError(`${where(field)} must be a list`);
    return value;
  };
  const hashes = new Set<string>();
  const tokens = list(section.tokens, "auth.tokens").map((item, i): AuthToken => {
    const field = `auth.tokens[${i}]`;
    const { object, name, grants } = entry(item, field);
    rejectUnknown(object, ["name", "sha256", "grants"], where(field));
    const sha256 = typeof object.sha256 === "string" ? object.sha256.toLowerCase() : "";
    if (!SHA256_HEX.test(sha256)) {
      throw new ConfigError(`${where(`${field}.sha256`)} must be the token's SHA-256 as 64 hex digits (tallyctl auth hash-token makes one), never the token itself`);
    }
    if (hashes.has(sha256)) throw new ConfigError(`${where(`${field}.sha256`)}: the same token is listed twice`);
    hashes.add(sha256);
    return { name, sha256, grants };
  });
  const identities = new Set<string>();
  const certificates = list(section.certificates, "auth.certificates").map((item, i): AuthCertificate => {
    const field = `auth.certificates[${i}]`;
    if (tls?.clientAuth !== "require") throw new ConfigError(`${where(field)}: certificate identities need tls.clientAuth: require (only then is a client certificate verified)`);
    const { object, name, grants } = entry(item, field);
    rejectUnknown(object, ["name", "identity", "grants"], where(field));
    const identity = object.identity;
    if (typeof identity !== "string" || identity.length === 0) throw new ConfigError(`${where(`${field}.identity`)} must be the certificate's CN or a SAN, got ${JSON.stringify(identity)}`);
    if (identities.has(identity)) throw new ConfigError(`${where(`${field}.identity`)}: "${identity}" is mapped twice`);
    identities.add(identity);
    return { name, identity, grants };
  });
  if (tokens.length + certificates.length === 0) throw new ConfigError(`${where("auth")}: needs at least one entry in tokens or certificates (else no one could use the cluster)`);
  const settings: AuthSettings = { tokens, certificates };
  if (section.internalTokenFile !== undefined) {
    settings.internalTokenFile = filePath(section.internalTokenFile, baseDir, where("auth.internalTokenFile"));
  } else if (tls?.clientAuth !== "require") {
    throw new ConfigError(
      `${where("auth.internalTokenFile")} is required (a file with the secret the nodes present to each other; without tls it also authenticates the peer port) unless tls.clientAuth is "require" (then node certificates identify the nodes)`,
    );
  }
  return settings;
}

function parseGrants(raw: unknown, field: string, where: (field: string) => string): AuthGrant[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new ConfigError(`${where(field)} must be a non-empty list of { prefix, roles }`);
  return raw.map((item, i) => {
    const grantField = `${field}[${i}]`;
    const grant = asObject(item, where(grantField));
    rejectUnknown(grant, ["prefix", "roles"], where(grantField));
    const prefix = grant.prefix ?? "";
    if (typeof prefix !== "string") throw new ConfigError(`${where(`${grantField}.prefix`)} must be a string ("" = every key), got ${JSON.stringify(prefix)}`);
    if (Buffer.byteLength(prefix, "utf8") > 256) throw new ConfigError(`${where(`${grantField}.prefix`)} is longer than a key can be (256 bytes)`);
    const roles = grant.roles;
    if (!Array.isArray(roles) || roles.length === 0) throw new ConfigError(`${where(`${grantField}.roles`)} must be a non-empty list of ${AUTH_ROLES.join(", ")}`);
    for (const role of roles) {
      if (!AUTH_ROLES.includes(role as AuthRole)) throw new ConfigError(`${where(`${grantField}.roles`)}: unknown role ${JSON.stringify(role)} (known: ${AUTH_ROLES.join(", ")})`);
    }
    if (new Set(roles).size !== roles.length) throw new ConfigError(`${where(`${grantField}.roles`)} lists a role twice`);
    if (roles.includes("admin") && prefix !== "") throw new ConfigError(`${where(`${grantField}.roles`)}: admin is cluster-wide; grant it with prefix ""`);
    return { prefix, roles: roles as AuthRole[] };
  });
}

/** A path to a file, resolved against the config's directory. Existence is checked when it is read. */
function filePath(value: unknown, baseDir: string, where: string): string {
  if (typeof value !== "string" || value.length === 0) throw new ConfigError(`${where} must be a file path, got ${JSON.stringify(value)}`);
  return isAbsolute(value) ? value : resolve(baseDir, value);
}

function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${where} must be a mapping`);
  return value as Record<string, unknown>;
}

function rejectUnknown(object: Record<string, unknown>, known: string[], where: string): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) throw new ConfigError(`${where}: unknown field "${key}" (known: ${known.join(", ")})`);
  }
}

function positiveInteger(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(`${where} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function address(value: unknown, where: string): string {
  if (typeof value !== "string") throw new ConfigError(`${where} must be "host:port", got ${JSON.stringify(value)}`);
  const match = /^([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw new ConfigError(`${where} must be "host:port" with a port in 1..65535, got "${value}"`);
  return value;
}
