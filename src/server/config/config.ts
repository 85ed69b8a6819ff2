/**
 * cluster.yaml: loading and validation. Every relationship between settings is checked at start-up
 * (etcd's Config.validate), and every message names the field at fault, so a typo fails loudly
 * before a node opens its data directory. Settings are described once, in config-settings.ts
 * (defaults, ranges, known fields, environment variables); tallyd overlays the TALLY_* variables on
 * the file before validation, so a bad variable gets the same message, naming the variable.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { ShardOptions } from "../../shard/state-machine.js";
import { SHA256_HEX } from "../../util/auth-token.js";
import {
  CLUSTER_SPECS,
  LIMITS_SPECS,
  PLACEMENT_SPECS,
  childFields,
  formatBound,
  type ClusterSettings,
  type Limits,
  type PlacementSettings,
  type SettingSpec,
} from "./config-settings.js";
import { applyEnvironment, asObject, ConfigError, type ConfigSources } from "./config-env.js";
import { parseEventualSettings, type EventualSettings } from "./eventual-settings.js";
import { hostProblems } from "./initial-placement.js";
import { hostOf } from "../../meta/cluster-map.js";
import { parseRegionSettings, type RegionSettings } from "../../util/region-config.js";

export { ConfigError, type ConfigSources } from "./config-env.js";
export { computePlacement, dealOrder, dealReplicas, metaReplicaIds, type DealtNode, type ShardPlacement } from "./initial-placement.js";
export type { ClusterSettings, Limits, PlacementSettings } from "./config-settings.js";

export interface NodeConfig {
  id: number;
  /** host:port for the client API (CounterService, AdminService), as clients and nodes dial it. */
  client: string;
  /** host:port for node-to-node Raft traffic, as the other nodes dial it. */
  peer: string;
  /** Where to bind when it differs from the advertised address (0.0.0.0:7000 in a container). */
  clientListen?: string;
  peerListen?: string;
  metricsListen?: string;
  zone: string;
  /** The machine it runs on (a failure domain below the zone); default: its own id. */
  host: string;
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

/** The optional `auth:` section (config/auth.ts). Absent: no access control. */
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
  /** Eventual counters (docs/eventual.md); defaults when the section is absent. */
  eventual: EventualSettings;
  /** Multi-region replication (docs/regions.md): checked here, used by `tallyctl regions replicate`. */
  regions?: RegionSettings;
}

function parseRegions(root: Record<string, unknown>, where: (field: string) => string): RegionSettings | undefined {
  try {
    return parseRegionSettings(root, where);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** `path` undefined: no file, every setting from `sources.env` (TALLY_NODES at least). */
export function loadClusterConfig(path: string | undefined, sources: ConfigSources = {}): ClusterConfig {
  if (path === undefined) return parseClusterConfig({}, "<environment>", sources);
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
  return parseClusterConfig(document ?? {}, source, sources);
}

export function parseClusterConfig(document: unknown, source = "<inline>", sources: ConfigSources = {}): ClusterConfig {
  const fileWhere = (field: string) => `${source}: ${field}`;
  const overlaid = applyEnvironment(asObject(document, fileWhere("(top level)")), sources, fileWhere);
  const root = overlaid.document;
  // A value that came from a variable is reported under the variable's name.
  const where = (field: string) => {
    for (const [prefix, variable] of overlaid.origins) {
      if (field === prefix || field.startsWith(`${prefix}.`) || field.startsWith(`${prefix}[`))
        return `environment variable ${variable}: ${field}`;
    }
    return fileWhere(field);
  };
  rejectUnknown(root, ["cluster", "limits", "placement", "nodes", "tls", "auth", "eventual", "region", "regions"], where("(top level)"));
  const cluster = parseSection<ClusterSettings>(root, "cluster", CLUSTER_SPECS, where);
  const limits = parseSection<Limits>(root, "limits", LIMITS_SPECS, where);
  const placement = parseSection<PlacementSettings>(root, "placement", PLACEMENT_SPECS, where);

  if (!Array.isArray(root.nodes) || root.nodes.length === 0) {
    throw new ConfigError(`${where("nodes")} must be a non-empty list`);
  }
  const baseDir = source.startsWith("<") ? process.cwd() : dirname(source);
  const tls = root.tls === undefined ? undefined : parseTls(root.tls, baseDir, where);
  const nodes = root.nodes.map((raw, i) => parseNode(raw, `nodes[${i}]`, baseDir, tls, where));

  // Default: 3 metadata replicas, or 1 for a cluster of one or two hosts (each replica on its own host).
  if (asObject(root.cluster ?? {}, where("cluster")).metaReplicas === undefined)
    cluster.metaReplicas = new Set(nodes.map((node) => node.host)).size >= 3 ? 3 : 1;
  const config: ClusterConfig = { source, cluster, limits, placement, nodes, eventual: parseEventualSettings(root.eventual, where) };
  if (tls !== undefined) config.tls = tls;
  if (root.auth !== undefined) config.auth = parseAuth(root.auth, baseDir, tls, where);
  const regions = parseRegions(root, where);
  if (regions !== undefined) config.regions = regions;
  const variables = [...new Set(overlaid.origins.values())];
  validateClusterConfig(config, variables.length === 0 ? source : `${source} with ${variables.join(", ")} from the environment`);
  return config;
}

function parseNode(
  raw: unknown,
  field: string,
  baseDir: string,
  tls: TlsSettings | undefined,
  where: (field: string) => string,
): NodeConfig {
  const node = asObject(raw, where(field));
  rejectUnknown(node, childFields("nodes[]"), where(field));
  const id = positiveInteger(node.id, where(`${field}.id`));
  const dataDirRaw = node.dataDir ?? `data/n${id}`;
  if (typeof dataDirRaw !== "string" || dataDirRaw.length === 0) throw new ConfigError(`${where(`${field}.dataDir`)} must be a path`);
  const parsed: NodeConfig = {
    id,
    client: address(node.client, where(`${field}.client`)),
    peer: address(node.peer, where(`${field}.peer`)),
    zone: typeof node.zone === "string" && node.zone.length > 0 ? node.zone : "default",
    host: hostOf({ id, host: node.host === undefined ? undefined : hostName(node.host, where(`${field}.host`)) }),
    dataDir: isAbsolute(dataDirRaw) ? dataDirRaw : resolve(baseDir, dataDirRaw),
  };
  if (node.metrics !== undefined) parsed.metrics = address(node.metrics, where(`${field}.metrics`));
  for (const kind of ["clientListen", "peerListen", "metricsListen"] as const) {
    if (node[kind] !== undefined) parsed[kind] = address(node[kind], where(`${field}.${kind}`));
  }
  for (const kind of ["cert", "key"] as const) {
    if (node[kind] === undefined) {
      if (tls !== undefined) throw new ConfigError(`${where(`${field}.${kind}`)} is required when the tls section is present`);
      continue;
    }
    if (tls === undefined) throw new ConfigError(`${where(`${field}.${kind}`)} needs a top-level tls section (tls.ca)`);
    parsed[kind] = filePath(node[kind], baseDir, where(`${field}.${kind}`));
  }
  return parsed;
}

function hostName(value: unknown, where: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 256)
    throw new ConfigError(`${where} must be a non-empty string of at most 256 characters, got ${JSON.stringify(value)}`);
  return value;
}

/** Where tallyd binds: the listen address when given, else the advertised one. */
export function listenAddress(node: NodeConfig, port: "client" | "peer" | "metrics"): string | undefined {
  return node[`${port}Listen`] ?? node[port];
}

/** One node's three listeners must not ask for the same port on overlapping hosts (0.0.0.0 overlaps all). */
function listenPortClash(node: NodeConfig, field: string): string | undefined {
  const seen: Array<{ name: string; host: string; port: string }> = [];
  for (const port of ["client", "peer", "metrics"] as const) {
    const value = listenAddress(node, port);
    if (value === undefined) continue;
    const separator = value.lastIndexOf(":");
    const host = value.slice(0, separator);
    const name = node[`${port}Listen`] === undefined ? port : `${port}Listen`;
    const clash = seen.find(
      (other) => other.port === value.slice(separator + 1) && (other.host === host || isWildcard(other.host) || isWildcard(host)),
    );
    if (clash !== undefined)
      return `${field}.${name}: ${value} would bind the port of ${field}.${clash.name} (${clash.host}:${clash.port})`;
    seen.push({ name, host, port: value.slice(separator + 1) });
  }
  return undefined;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "[::]";
}

/** A section of scalar settings (cluster, limits, placement): known fields, types and ranges from the table. */
function parseSection<T>(
  root: Record<string, unknown>,
  section: string,
  specs: Record<string, Omit<SettingSpec, "path">>,
  where: (field: string) => string,
): T {
  const raw = root[section] === undefined ? {} : asObject(root[section], where(section));
  rejectUnknown(raw, Object.keys(specs), where(section));
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const value = raw[key];
    // Only cluster.metaReplicas has no constant default; parseClusterConfig sets it from the node count.
    values[key] = value === undefined ? spec.default : scalar(spec, value, where(`${section}.${key}`));
  }
  return values as T;
}

function scalar(spec: Omit<SettingSpec, "path">, value: unknown, where: string): unknown {
  if (spec.type === "boolean") {
    if (typeof value !== "boolean") throw new ConfigError(`${where} must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }
  if (spec.type === "string") {
    if (typeof value !== "string" || value.length === 0) throw new ConfigError(`${where} must be a non-empty string`);
    return value;
  }
  if (spec.type === "integer or 0" && value === 0) return 0;
  const number = positiveInteger(value, where);
  const { min, max } = spec;
  if (min !== undefined && max !== undefined && (number < min || number > max)) {
    throw new ConfigError(`${where} (${number}) must be between ${formatBound(min)} and ${formatBound(max)}`);
  }
  if (max !== undefined && number > max) throw new ConfigError(`${where} (${number}) must be at most ${formatBound(max)}`);
  return number;
}

/** Relationships between settings. `label` names where they came from (file, and variables). */
export function validateClusterConfig(config: ClusterConfig, label: string = config.source): void {
  const { cluster, limits, nodes } = config;
  const fail = (message: string): never => {
    throw new ConfigError(`${label}: ${message}`);
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
    const clash = listenPortClash(node, `nodes[${i}]`);
    if (clash !== undefined) fail(clash);
    if (dataDirs.has(node.dataDir)) fail(`nodes[${i}].dataDir: ${node.dataDir} is shared with another node`);
    dataDirs.add(node.dataDir);
  });
  if (cluster.replicationFactor > nodes.length) {
    fail(`cluster.replicationFactor (${cluster.replicationFactor}) exceeds the number of nodes (${nodes.length})`);
  }
  if (cluster.metaReplicas > nodes.length) {
    fail(`cluster.metaReplicas (${cluster.metaReplicas}) exceeds the number of nodes (${nodes.length})`);
  }
  if (cluster.metaReplicas % 2 === 0 || cluster.metaReplicas > 7)
    fail(`cluster.metaReplicas (${cluster.metaReplicas}) must be 1, 3, 5 or 7`);
  hostProblems(config).forEach(fail);
  if (config.placement.heartbeatMs * 3 > config.placement.downAfterMs) {
    fail(
      `placement.downAfterMs (${config.placement.downAfterMs}) must be at least 3 x placement.heartbeatMs (${config.placement.heartbeatMs})`,
    );
  }
  if (cluster.electionTicks <= cluster.heartbeatTicks) {
    fail(`cluster.electionTicks (${cluster.electionTicks}) must be greater than cluster.heartbeatTicks (${cluster.heartbeatTicks})`);
  }
  if (cluster.leaseDriftTicks >= cluster.electionTicks) {
    fail(`cluster.leaseDriftTicks (${cluster.leaseDriftTicks}) must be less than cluster.electionTicks (${cluster.electionTicks})`);
  }
  if (limits.maxSizePerMsgBytes > limits.maxInflightBytes) {
    fail(`limits.maxSizePerMsgBytes (${limits.maxSizePerMsgBytes}) must not exceed limits.maxInflightBytes (${limits.maxInflightBytes})`);
  }
  if (limits.maxInflightPerClient > limits.maxInflightPerNode) {
    fail(
      `limits.maxInflightPerClient (${limits.maxInflightPerClient}) must not exceed limits.maxInflightPerNode (${limits.maxInflightPerNode})`,
    );
  }
}

/** The group id of the metadata Raft group; shards are 1.. (node.ts still declares its own copy). */
export const META_GROUP_ID = 0;

/** The counter state machine's options under this config: every replica's, and tallyctl restore's. */
export function shardOptionsOf(config: ClusterConfig): ShardOptions {
  return {
    sessionTimeoutMs: config.cluster.sessionTimeoutMs,
    maxSessions: 100_000,
    maxSessionsPerCaller: config.cluster.sessionsPerCallerMax,
    maxRetainedResultsPerSession: 1_024,
  };
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
  rejectUnknown(section, childFields("tls"), where("tls"));
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
    rejectUnknown(client, childFields("tls.client"), where("tls.client"));
    tls.client = {
      cert: filePath(client.cert, baseDir, where("tls.client.cert")),
      key: filePath(client.key, baseDir, where("tls.client.key")),
    };
  }
  return tls;
}

const AUTH_ROLES: readonly AuthRole[] = ["read", "write", "admin"];
const AUTH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function parseAuth(raw: unknown, baseDir: string, tls: TlsSettings | undefined, where: (field: string) => string): AuthSettings {
  const section = asObject(raw, where("auth"));
  rejectUnknown(section, childFields("auth"), where("auth"));
  const names = new Set<string>();
  const entry = (item: unknown, field: string): { object: Record<string, unknown>; name: string; grants: AuthGrant[] } => {
    const object = asObject(item, where(field));
    const name = object.name;
    if (typeof name !== "string" || !AUTH_NAME.test(name))
      throw new ConfigError(
        `${where(`${field}.name`)} must be 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit), got ${JSON.stringify(name)}`,
      );
    if (names.has(name))
      throw new ConfigError(`${where(`${field}.name`)}: "${name}" is used twice (names appear in logs and must say who it was)`);
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
      throw new ConfigError(
        `${where(`${field}.sha256`)} must be the token's SHA-256 as 64 hex digits (tallyctl auth hash-token makes one), never the token itself`,
      );
    }
    if (hashes.has(sha256)) throw new ConfigError(`${where(`${field}.sha256`)}: the same token is listed twice`);
    hashes.add(sha256);
    return { name, sha256, grants };
  });
  const identities = new Set<string>();
  const certificates = list(section.certificates, "auth.certificates").map((item, i): AuthCertificate => {
    const field = `auth.certificates[${i}]`;
    if (tls?.clientAuth !== "require")
      throw new ConfigError(
        `${where(field)}: certificate identities need tls.clientAuth: require (only then is a client certificate verified)`,
      );
    const { object, name, grants } = entry(item, field);
    rejectUnknown(object, ["name", "identity", "grants"], where(field));
    const identity = object.identity;
    if (typeof identity !== "string" || identity.length === 0)
      throw new ConfigError(`${where(`${field}.identity`)} must be the certificate's CN or a SAN, got ${JSON.stringify(identity)}`);
    if (identities.has(identity)) throw new ConfigError(`${where(`${field}.identity`)}: "${identity}" is mapped twice`);
    identities.add(identity);
    return { name, identity, grants };
  });
  if (tokens.length + certificates.length === 0)
    throw new ConfigError(`${where("auth")}: needs at least one entry in tokens or certificates (else no one could use the cluster)`);
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
    if (typeof prefix !== "string")
      throw new ConfigError(`${where(`${grantField}.prefix`)} must be a string ("" = every key), got ${JSON.stringify(prefix)}`);
    if (Buffer.byteLength(prefix, "utf8") > 256)
      throw new ConfigError(`${where(`${grantField}.prefix`)} is longer than a key can be (256 bytes)`);
    const roles = grant.roles;
    if (!Array.isArray(roles) || roles.length === 0)
      throw new ConfigError(`${where(`${grantField}.roles`)} must be a non-empty list of ${AUTH_ROLES.join(", ")}`);
    for (const role of roles) {
      if (!AUTH_ROLES.includes(role as AuthRole))
        throw new ConfigError(`${where(`${grantField}.roles`)}: unknown role ${JSON.stringify(role)} (known: ${AUTH_ROLES.join(", ")})`);
    }
    if (new Set(roles).size !== roles.length) throw new ConfigError(`${where(`${grantField}.roles`)} lists a role twice`);
    if (roles.includes("admin") && prefix !== "")
      throw new ConfigError(`${where(`${grantField}.roles`)}: admin is cluster-wide; grant it with prefix ""`);
    return { prefix, roles: roles as AuthRole[] };
  });
}

/** A path to a file, resolved against the config's directory. Existence is checked when it is read. */
function filePath(value: unknown, baseDir: string, where: string): string {
  if (typeof value !== "string" || value.length === 0) throw new ConfigError(`${where} must be a file path, got ${JSON.stringify(value)}`);
  return isAbsolute(value) ? value : resolve(baseDir, value);
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
