/**
 * Every cluster.yaml setting, described once: where it lives, its type, default, range, meaning
 * and environment variable. The validator (config.ts) takes defaults, ranges and the known field
 * names from here, the environment overlay takes the variable names and types, and
 * scripts/gen-config-docs.ts writes docs/configuration.md from it, so the reference cannot drift
 * from what tallyd accepts (a unit test fails when the generated file is out of date).
 *
 * Environment rule: `TALLY_` + the setting's path in upper snake case, where the node's own entry
 * `nodes[]` is `NODE`: cluster.shards -> TALLY_CLUSTER_SHARDS, limits.maxKeyBytes ->
 * TALLY_LIMITS_MAX_KEY_BYTES, tls.client.cert -> TALLY_TLS_CLIENT_CERT, nodes[].peerListen ->
 * TALLY_NODE_PEER_LISTEN (a field of the node that TALLY_NODE_ID / --node selects).
 */

/** How a value is written. `list` settings take YAML (flow syntax, e.g. `[{...}]`) in the environment. */
export type SettingType = "integer" | "integer or 0" | "boolean" | "string" | "host:port" | "path" | "enum" | "list";

export interface SettingSpec {
  /** Where in cluster.yaml: `cluster.shards`; `nodes[].x` is a field of every node entry. */
  path: string;
  type: SettingType;
  /** The value used when absent (scalar sections), or a sentence saying what absence means. */
  default?: number | boolean | string;
  /** The default in words, when it is not a constant. */
  defaultText?: string;
  /** Inclusive bounds the validator enforces on integers. */
  min?: number;
  max?: number;
  /** Allowed values of an `enum`. */
  values?: readonly string[];
  meaning: string;
}

const MIB = 1024 * 1024;

/** Scalar settings of one section, keyed by field name (the section's TypeScript interface keys). */
export type SectionSpecs<T> = { [K in keyof T]-?: Omit<SettingSpec, "path"> };

export const CLUSTER_SPECS = {
  name: { type: "string", default: "local", meaning: "The cluster's name, in logs and metrics." },
  replicationFactor: { type: "integer", default: 3, meaning: "Replicas per shard; at most the number of nodes." },
  shards: {
    type: "integer",
    default: 8,
    max: 1024,
    meaning: "Shard Raft groups at bootstrap; the 16384 hash slots are split evenly between them.",
  },
  tickMs: { type: "integer", default: 20, max: 1000, meaning: "One Raft tick, in milliseconds." },
  electionTicks: {
    type: "integer",
    default: 25,
    meaning: "Minimum election timeout in ticks (randomized up to 2x); greater than heartbeatTicks.",
  },
  heartbeatTicks: { type: "integer", default: 5, meaning: "Leader heartbeat interval in ticks." },
  leaseDriftTicks: {
    type: "integer",
    default: 5,
    meaning: "Clock drift allowance: a leader's read lease lasts electionTicks - leaseDriftTicks; less than electionTicks.",
  },
  sessionTimeoutMs: {
    type: "integer",
    default: 600_000,
    meaning: "Exactly-once sessions expire after this long idle (leader-stamped time).",
  },
  sessionsPerCallerMax: {
    type: "integer",
    default: 10_000,
    meaning:
      "Sessions one authenticated caller may hold per shard (beyond: RESOURCE_EXHAUSTED). Replicated state: every node must use the same value.",
  },
  snapshotEveryEntries: {
    type: "integer",
    default: 10_000,
    meaning: "Compact a Raft log after this many entries (a shard also every 8 MiB of entries).",
  },
  metaReplicas: {
    type: "integer",
    defaultText: "3, or 1 with fewer than 3 nodes",
    max: 7,
    meaning: "Replicas of the metadata group: the first this many nodes by id. 1, 3, 5 or 7.",
  },
} as const satisfies SectionSpecs<ClusterSettings>;

export const LIMITS_SPECS = {
  maxKeyBytes: { type: "integer", default: 256, max: 256, meaning: "Longest key, in bytes." },
  maxBatchOps: { type: "integer", default: 10_000, max: 10_000, meaning: "Operations in one batch request." },
  maxPendingProposalsPerShard: {
    type: "integer",
    default: 100_000,
    meaning: "Mutations waiting for commit on one shard; beyond: OVERLOADED.",
  },
  maxEntryBytes: { type: "integer", default: 4 * MIB, max: 64 * MIB, meaning: "One Raft entry (a leader-side batch of commands)." },
  maxInflightMessages: { type: "integer", default: 256, meaning: "Raft append messages in flight to one follower." },
  maxInflightBytes: {
    type: "integer",
    default: 32 * MIB,
    meaning: "Bytes of Raft appends in flight to one follower; at least maxSizePerMsgBytes.",
  },
  maxSizePerMsgBytes: { type: "integer", default: MIB, meaning: "Largest Raft append message." },
  requestTimeoutMs: { type: "integer", default: 5_000, meaning: "A mutation not known to be committed by then is answered as ambiguous." },
  maxInflightPerClient: {
    type: "integer",
    default: 500,
    meaning: "Requests in flight from one client connection, and from one session, before OVERLOADED; at most maxInflightPerNode.",
  },
  // 1,000 reads answered in one run held a node's thread ~0.16 s; 4,000 held it 1.1 s and cost
  // the shard its leader (docs/limits.md).
  maxInflightPerNode: {
    type: "integer",
    default: 1_000,
    meaning: "Requests in flight on the whole node (every connection) before OVERLOADED (docs/limits.md).",
  },
  // The least RFC 9113 recommends; calls arriving together cost ~0.1 ms each even when refused.
  maxStreamsPerConnection: {
    type: "integer",
    default: 100,
    meaning: "Calls one connection may have open at once (HTTP/2 max concurrent streams); the client queues the rest.",
  },
  // 10,000 ops with 256-byte keys and every field set encode to ~2.9 MiB.
  maxRequestBytes: {
    type: "integer",
    default: 4 * MIB,
    min: 4096,
    max: 256 * MIB,
    meaning: "Largest request message on the client port, checked on the length prefix before buffering; beyond: RESOURCE_EXHAUSTED.",
  },
} as const satisfies SectionSpecs<Limits>;

export const PLACEMENT_SPECS = {
  autoRebalance: {
    type: "boolean",
    default: true,
    meaning: "Start replica moves and leader transfers on its own (false: only what tallyctl asks for).",
  },
  downAfterMs: {
    type: "integer",
    default: 30_000,
    meaning: "A node silent this long is marked down and its replicas are re-created elsewhere; at least 3 x heartbeatMs.",
  },
  maxConcurrentMoves: { type: "integer", default: 2, meaning: "Replica moves running at once." },
  heartbeatMs: { type: "integer", default: 300, meaning: "How often every node reports to the metadata leader (and learns the map)." },
  catchUpTimeoutMs: {
    type: "integer",
    default: 120_000,
    meaning: "A new replica that has not caught up by then is removed again and its move aborted.",
  },
  leaderTransferCooldownMs: {
    type: "integer",
    default: 10_000,
    meaning: "Minimum time between two automatic leader transfers of one shard.",
  },
  splitOpsPerSecond: {
    type: "integer or 0",
    default: 20_000,
    meaning: "A shard whose leader applies more mutations/s than this (sustained) is split; 0 = never.",
  },
  splitSustainMs: { type: "integer", default: 10_000, meaning: "How long a shard must stay above splitOpsPerSecond before it is split." },
} as const satisfies SectionSpecs<PlacementSettings>;

const NODE_SPECS: SettingSpec[] = [
  {
    path: "nodes",
    type: "list",
    defaultText: "required",
    meaning: "The cluster's nodes, each a mapping of the nodes[] fields below. Required (file or TALLY_NODES).",
  },
  {
    path: "nodes[].id",
    type: "integer",
    defaultText: "required",
    meaning: "The node's id, unique. In the environment, TALLY_NODE_ID (or tallyd --node) picks which entry this tallyd is.",
  },
  {
    path: "nodes[].client",
    type: "host:port",
    defaultText: "required",
    meaning: "Advertised client address (CounterService, AdminService): what clients and other nodes dial.",
  },
  {
    path: "nodes[].clientListen",
    type: "host:port",
    defaultText: "nodes[].client",
    meaning: "Where tallyd binds the client port, e.g. 0.0.0.0:7000 in a container.",
  },
  {
    path: "nodes[].peer",
    type: "host:port",
    defaultText: "required",
    meaning: "Advertised peer address: what other nodes dial for Raft traffic.",
  },
  { path: "nodes[].peerListen", type: "host:port", defaultText: "nodes[].peer", meaning: "Where tallyd binds the peer port." },
  {
    path: "nodes[].metrics",
    type: "host:port",
    defaultText: "none (no ops HTTP server)",
    meaning: "Advertised address of the ops HTTP server (/metrics, /livez, /readyz).",
  },
  {
    path: "nodes[].metricsListen",
    type: "host:port",
    defaultText: "nodes[].metrics",
    meaning: "Where tallyd binds the ops HTTP server; either this or nodes[].metrics turns it on.",
  },
  {
    path: "nodes[].zone",
    type: "string",
    default: "default",
    meaning: "Failure domain; placement spreads a shard's replicas across zones.",
  },
  {
    path: "nodes[].host",
    type: "string",
    defaultText: "the node's id (every node its own host)",
    meaning:
      "The machine the node runs on, for several tallyd per host: no shard or metadata group ever has two replicas on one host. All nodes of a host share its zone.",
  },
  { path: "nodes[].dataDir", type: "path", defaultText: "data/n<id>", meaning: "The node's data directory, never shared." },
  {
    path: "nodes[].cert",
    type: "path",
    defaultText: "required with tls",
    meaning: "The node's certificate chain (PEM); only with a tls section.",
  },
  {
    path: "nodes[].key",
    type: "path",
    defaultText: "required with tls",
    meaning: "The node's private key (PEM); only with a tls section.",
  },
];

const TLS_SPECS: SettingSpec[] = [
  {
    path: "tls.ca",
    type: "path",
    defaultText: "no tls section: plaintext everywhere",
    meaning: "CA bundle every node and client certificate must chain to. Setting it turns TLS on (client port) and mTLS (between nodes).",
  },
  {
    path: "tls.clientAuth",
    type: "enum",
    values: ["require", "none"],
    default: "require",
    meaning: "The client port: require a client certificate from the CA (mTLS), or none (TLS only).",
  },
  {
    path: "tls.reloadSeconds",
    type: "integer",
    default: 30,
    meaning: "Seconds between re-reads of the certificate files (SIGHUP re-reads at once).",
  },
  { path: "tls.client.cert", type: "path", meaning: "A client certificate for tallyctl and the test tools." },
  { path: "tls.client.key", type: "path", meaning: "The key of tls.client.cert." },
];

const AUTH_SPECS: SettingSpec[] = [
  {
    path: "auth.tokens",
    type: "list",
    defaultText: "no auth section: access control off",
    meaning: "Bearer tokens: { name, sha256 (of the token, `tallyctl auth hash-token`), grants: [{ prefix, roles: [read|write|admin] }] }.",
  },
  {
    path: "auth.certificates",
    type: "list",
    meaning: "mTLS client identities (CN or a SAN): { name, identity, grants }; needs tls.clientAuth: require.",
  },
  {
    path: "auth.internalTokenFile",
    type: "path",
    defaultText: "required with auth unless tls.clientAuth is require",
    meaning: "File holding the secret the nodes present to each other (without tls it also authenticates the peer port).",
  },
];

/** Multi-region replication, top-level keys (parsed by src/util/region-config.ts; docs/regions.md). */
const REGION_SPECS: SettingSpec[] = [
  {
    path: "region",
    type: "string",
    defaultText: "none: one region, nothing replicated",
    meaning: "This cluster's region name: 1..16 of a-z, 0-9 and '-'. Needed with regions.",
  },
  {
    path: "regions",
    type: "list",
    defaultText: "none",
    meaning:
      "The other regions whose counters `tallyctl regions replicate` ships into this cluster: { name, endpoints: [host:port], addressMap?: { advertised host:port: dialed host:port } }.",
  },
];

/** The `eventual:` section (parsed by eventual-settings.ts, which keeps the same defaults). */
const EVENTUAL_SPECS: SettingSpec[] = [
  {
    path: "eventual.prefixes",
    type: "list",
    defaultText: "none: eventual only when a call asks for it",
    meaning:
      "Key prefixes whose adds are eventual in `mode: auto` (tallyctl add's default); clients learn them from Routes (docs/eventual.md).",
  },
  {
    path: "eventual.flushIntervalMs",
    type: "integer",
    default: 100,
    max: 10_000,
    meaning: "A node flushes each key's buffered delta into its shard at least this often.",
  },
  {
    path: "eventual.fsync",
    type: "boolean",
    default: true,
    meaning: "Eventual adds are answered after their group fsync; false: once in the page cache (a machine crash loses recent adds).",
  },
  {
    path: "eventual.bufferCompactBytes",
    type: "integer",
    default: 4 * MIB,
    meaning: "The node's eventual buffer file is rewritten without flushed adds when it grows past this size.",
  },
  {
    path: "eventual.refuseAfterLeaderSilenceMs",
    type: "integer",
    default: 300,
    max: 600_000,
    meaning:
      "A node refuses eventual adds (UNAVAILABLE: the client tries another node) for a shard whose leader it has not heard from for this long; a request with accept_unflushable is buffered anyway. 0: never refuse.",
  },
];

function sectionSettings(section: string, specs: Record<string, Omit<SettingSpec, "path">>): SettingSpec[] {
  return Object.entries(specs).map(([key, spec]) => ({ path: `${section}.${key}`, ...spec }));
}

/** Every setting, in the order of the reference. */
export const CONFIG_SETTINGS: readonly SettingSpec[] = [
  ...sectionSettings("cluster", CLUSTER_SPECS),
  ...sectionSettings("limits", LIMITS_SPECS),
  ...sectionSettings("placement", PLACEMENT_SPECS),
  ...NODE_SPECS,
  ...TLS_SPECS,
  ...AUTH_SPECS,
  ...EVENTUAL_SPECS,
  ...REGION_SPECS,
];

/** tallyd's own variables, outside cluster.yaml. */
export const PROCESS_SETTINGS: ReadonlyArray<{ env: string; meaning: string }> = [
  { env: "TALLY_CONFIG", meaning: "Path of cluster.yaml (tallyd --config wins). Optional when TALLY_NODES gives the nodes." },
  { env: "TALLY_NODE_ID", meaning: "This node's id (tallyd --node wins); also selects the entry the TALLY_NODE_* variables change." },
  { env: "TALLY_LOG_LEVEL", meaning: "Log level: trace, debug, info (default), warn, error, fatal, silent." },
  { env: "TALLY_LOG_FORMAT", meaning: "pretty or json; default: readable lines on a terminal, JSON lines otherwise." },
];

/** The environment variable of a setting path (the rule in this file's header). */
export function envVarName(path: string): string {
  const snake = path
    .replace(/^nodes\[\]\./, "node.")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/\./g, "_")
    .toUpperCase();
  return `TALLY_${snake}`;
}

/** The field names directly under `prefix` ("cluster", "nodes[]", "tls"), from the table. */
export function childFields(prefix: string): string[] {
  const fields = CONFIG_SETTINGS.filter((spec) => spec.path.startsWith(`${prefix}.`)).map(
    (spec) => spec.path.slice(prefix.length + 1).split(".")[0]!,
  );
  return [...new Set(fields)];
}

/** `64 MiB` for whole mebibytes, else the plain number: how limits read in messages and docs. */
export function formatBound(value: number): string {
  return value >= MIB && value % MIB === 0 ? `${value / MIB} MiB` : String(value);
}

// ---- the typed sections these tables describe (config.ts re-exports them) ----

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
