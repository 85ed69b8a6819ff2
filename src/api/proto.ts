import { protoFile } from "../util/paths.js";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/**
 * proto/tally.proto loaded with the options the server uses too. `longs: String` makes every
 * (u)int64 arrive as a decimal string, so a counter value never passes through a JS number;
 * callers convert with BigInt. `oneofs: true` adds a virtual field naming the set member
 * (`op` on PipelineRequest/BatchOp, `result` on PipelineResponse).
 */
export const TALLY_PROTO_PATH = protoFile("tally.proto");

export const PROTO_LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

export interface TallyProto {
  packageDefinition: protoLoader.PackageDefinition;
  CounterService: grpc.ServiceClientConstructor;
  AdminService: grpc.ServiceClientConstructor;
}

let loaded: TallyProto | undefined;

/** Loads the proto once per process (parsing it is a few milliseconds we need not repeat). */
export function tallyProto(): TallyProto {
  if (loaded === undefined) {
    const packageDefinition = protoLoader.loadSync(TALLY_PROTO_PATH, PROTO_LOADER_OPTIONS);
    const root = grpc.loadPackageDefinition(packageDefinition) as unknown as {
      tally: { v1: { CounterService: grpc.ServiceClientConstructor; AdminService: grpc.ServiceClientConstructor } };
    };
    loaded = {
      packageDefinition,
      CounterService: root.tally.v1.CounterService,
      AdminService: root.tally.v1.AdminService,
    };
  }
  return loaded;
}

// ---- Message shapes as proto-loader decodes them (camelCase; 64-bit integers as decimal strings;
// unset message fields as null; only the set member of a oneof present). When encoding, the same
// shapes are accepted; a missing scalar encodes as its default.

/** A (u)int64 on the wire: decimal string. */
export type Int64String = string;

export interface FenceMessage {
  term: Int64String;
  index: Int64String;
}

export interface RequestHeaderMessage {
  shardId: number;
  epoch: Int64String;
  clientId: Int64String;
  seq: Int64String;
  firstUnackedSeq: Int64String;
  /** Instead of a session: a sessionless write's id (proto RequestHeader.request_id). */
  requestId?: string;
}

export interface RegisterSessionRequestMessage {
  shardId: number;
  epoch: Int64String;
}
export interface RegisterSessionResponseMessage {
  clientId: Int64String;
  fence: FenceMessage | null;
}
export interface KeepAliveRequestMessage {
  header: RequestHeaderMessage;
}
export interface KeepAliveResponseMessage {
  fence: FenceMessage | null;
}

export interface AddRequestMessage {
  header: RequestHeaderMessage | null;
  key: Buffer;
  delta: Int64String;
  hasFloor: boolean;
  floor: Int64String;
  ttlMs?: Int64String;
}
export interface SetRequestMessage {
  header: RequestHeaderMessage | null;
  key: Buffer;
  value: Int64String;
  ttlMs?: Int64String;
}
export interface ResetRequestMessage {
  header: RequestHeaderMessage | null;
  key: Buffer;
}
export interface CompareAndSetRequestMessage {
  header: RequestHeaderMessage | null;
  key: Buffer;
  expectedVersion: Int64String;
  value: Int64String;
}
export interface MutationResponseMessage {
  value: Int64String;
  version: Int64String;
  fence: FenceMessage | null;
}

export interface AddOpMessage {
  key: Buffer;
  delta: Int64String;
  hasFloor: boolean;
  floor: Int64String;
  ttlMs?: Int64String;
}
export interface SetOpMessage {
  key: Buffer;
  value: Int64String;
  ttlMs?: Int64String;
}
export interface WindowAddOpMessage {
  key: Buffer;
  delta: Int64String;
  eventTimeMs: Int64String;
  ttlMs: Int64String;
}
export interface TryAcquireOpMessage {
  key: Buffer;
  n: Int64String;
  limit: Int64String;
  windowMs: Int64String;
}
export interface UniqueAddOpMessage {
  key: Buffer;
  items: Buffer[];
  ttlMs: Int64String;
}
export interface ResetOpMessage {
  key: Buffer;
}
export interface CompareAndSetOpMessage {
  key: Buffer;
  expectedVersion: Int64String;
  value: Int64String;
}
export interface BatchOpMessage {
  op?: "add" | "set" | "reset" | "compareAndSet" | "windowAdd" | "tryAcquire" | "uniqueAdd";
  add?: AddOpMessage;
  set?: SetOpMessage;
  reset?: ResetOpMessage;
  compareAndSet?: CompareAndSetOpMessage;
  windowAdd?: WindowAddOpMessage;
  tryAcquire?: TryAcquireOpMessage;
  uniqueAdd?: UniqueAddOpMessage;
}
export interface BatchRequestMessage {
  header: RequestHeaderMessage | null;
  ops: BatchOpMessage[];
  /** An add-only batch in packed form (src/api/packed-batch.ts), instead of ops. */
  packedAdds?: Buffer;
}
export interface OpResultMessage {
  value: Int64String;
  version: Int64String;
  eventTimeMs?: Int64String;
  hasAcquire?: boolean;
  allowed?: boolean;
  retryAfterMs?: Int64String;
}
export interface BatchResponseMessage {
  results: OpResultMessage[];
  fence: FenceMessage | null;
  /** The results of a packed_adds request (src/api/packed-batch.ts), instead of results. */
  packedResults?: Buffer;
}

export type ConsistencyName = "LINEARIZABLE" | "STALE";

export interface GetRequestMessage {
  key: Buffer;
  consistency: ConsistencyName;
  minIndex: Int64String;
  shardId: number;
  epoch: Int64String;
  hotSubCounters?: number;
}
export interface GetResponseMessage {
  value: Int64String;
  version: Int64String;
  exists: boolean;
  fence: FenceMessage | null;
  appliedIndex: Int64String;
}
export interface GetManyRequestMessage {
  keys: Buffer[];
  consistency: ConsistencyName;
  minIndex: Int64String;
  shardId: number;
  epoch: Int64String;
  hotSubCounters?: number[];
}
export interface GetManyResponseMessage {
  values: GetResponseMessage[];
}

/** The common fields of every read request. */
export interface ReadFieldsMessage {
  consistency: ConsistencyName;
  minIndex: Int64String;
  shardId: number;
  epoch: Int64String;
}
export interface WindowRangeRequestMessage extends ReadFieldsMessage {
  key: Buffer;
  fromMs: Int64String;
  toMs: Int64String;
  stepMs: Int64String;
  agg: string;
}
export interface WindowPointMessage {
  startMs: Int64String;
  value: Int64String;
  divisor: Int64String;
}
export interface WindowRangeResponseMessage {
  points: WindowPointMessage[];
  resolutionMs: Int64String;
  version: Int64String;
  fence: FenceMessage | null;
  appliedIndex: Int64String;
}
export interface WindowAtRequestMessage extends ReadFieldsMessage {
  key: Buffer;
  timeMs: Int64String;
}
export interface WindowAtResponseMessage {
  startMs: Int64String;
  resolutionMs: Int64String;
  sum: Int64String;
  count: Int64String;
  version: Int64String;
  fence: FenceMessage | null;
  appliedIndex: Int64String;
}
export interface UniqueCountRequestMessage extends ReadFieldsMessage {
  keys: Buffer[];
  withSketch: boolean;
}
export interface UniqueCountResponseMessage {
  count: Int64String;
  sketch: Buffer;
  fence: FenceMessage | null;
  appliedIndex: Int64String;
}
export interface ShardAnswerMessage {
  shardId: number;
  slotStart: number;
  slotEnd: number;
  epoch: Int64String;
  appliedIndex: Int64String;
  fence: FenceMessage | null;
}
export interface TopKRequestMessage extends ReadFieldsMessage {
  prefix: Buffer;
  k: number;
  windowFromMs?: Int64String;
  windowToMs?: Int64String;
}
export interface TopKResponseMessage {
  entries: Array<{ key: Buffer; value: Int64String }>;
  shard: ShardAnswerMessage | null;
}
export interface AggregateRequestMessage extends ReadFieldsMessage {
  prefix: Buffer;
  windowFromMs?: Int64String;
  windowToMs?: Int64String;
}
export interface AggregateResponseMessage {
  count: Int64String;
  sum: string;
  min: Int64String;
  max: Int64String;
  shard: ShardAnswerMessage | null;
}

export interface WatchRequestMessage {
  key: Buffer;
  prefix: boolean;
  fromIndex: Int64String;
  shardId: number;
  epoch: Int64String;
  coalesceMs: number;
}
export interface WatchEventMessage {
  key: Buffer;
  value: Int64String;
  version: Int64String;
  kind: string;
  index: Int64String;
}
export interface WatchBatchMessage {
  events: WatchEventMessage[];
  index: Int64String;
  shardId: number;
}

/** The members of PipelineRequest.op, by field name. */
export interface PipelineOps {
  add: AddRequestMessage;
  set: SetRequestMessage;
  reset: ResetRequestMessage;
  compareAndSet: CompareAndSetRequestMessage;
  batch: BatchRequestMessage;
  get: GetRequestMessage;
  getMany: GetManyRequestMessage;
  windowRange: WindowRangeRequestMessage;
  windowAt: WindowAtRequestMessage;
  uniqueCount: UniqueCountRequestMessage;
  topK: TopKRequestMessage;
  aggregate: AggregateRequestMessage;
}
export type PipelineOpName = keyof PipelineOps;

export type PipelineRequestMessage = { id: Int64String; op?: PipelineOpName } & Partial<PipelineOps>;

export interface PipelineResponseMessage {
  id: Int64String;
  result?: "mutation" | "batch" | "get" | "getMany" | "error" | "windowRange" | "windowAt" | "uniqueCount" | "topK" | "aggregate";
  mutation?: MutationResponseMessage;
  batch?: BatchResponseMessage;
  get?: GetResponseMessage;
  getMany?: GetManyResponseMessage;
  windowRange?: WindowRangeResponseMessage;
  windowAt?: WindowAtResponseMessage;
  uniqueCount?: UniqueCountResponseMessage;
  topK?: TopKResponseMessage;
  aggregate?: AggregateResponseMessage;
  error?: ErrorInfoMessage;
}

export interface ErrorInfoMessage {
  code: string;
  message: string;
  leaderId: string;
  leaderAddress: string;
  shardId: number;
  currentEpoch: Int64String;
  currentVersion: Int64String;
  retryAfterMs: number;
  hasOpIndex: boolean;
  opIndex: number;
}

export interface ReplicaInfoMessage {
  nodeId: string;
  address: string;
  role: string;
}
export interface ShardRouteMessage {
  shardId: number;
  slotStart: number;
  slotEnd: number;
  epoch: Int64String;
  replicas: ReplicaInfoMessage[];
  leaderId: string;
  term: Int64String;
}
export interface HotRouteMessage {
  key: Buffer;
  tags: number[];
  writable: number;
}
export interface RoutesResponseMessage {
  shards: ShardRouteMessage[];
  slotCount: number;
  /** Absent from servers that predate hot counters. */
  hot?: HotRouteMessage[];
  mapVersion?: Int64String;
}

export interface PeerLagMessage {
  nodeId: string;
  match: Int64String;
  lag: Int64String;
  state: string;
}
export interface GroupStatusMessage {
  groupId: number;
  role: string;
  term: Int64String;
  leaderId: string;
  commit: Int64String;
  applied: Int64String;
  lastIndex: Int64String;
  leaseValid: boolean;
  epoch: Int64String;
  peers: PeerLagMessage[];
}
export interface NodeStatusMessage {
  nodeId: string;
  clientAddress: string;
  zone: string;
  reachable: boolean;
  groups: GroupStatusMessage[];
  error: string;
  /** Absent from an unreachable node's entry. */
  stats?: NodeStatsMessage | null;
}
/** Counters since the process started (proto NodeStats). */
export interface NodeStatsMessage {
  loopIterations: Int64String;
  syncs: Int64String;
  entriesWritten: Int64String;
  entriesApplied: Int64String;
  leaderChanges: Int64String;
  inboundDropped: Int64String;
  snapshotsInstalled: Int64String;
  snapshotsTaken: Int64String;
}
export interface StatusResponseMessage {
  nodes: NodeStatusMessage[];
}
export interface TransferLeaderRequestMessage {
  shardId: number;
  toNode: string;
}
export interface TransferLeaderResponseMessage {
  leaderId: string;
}

// ---- The rest of AdminService, from proto/tally.proto (written by hand like the shapes above). ----

/** RoutesRequest and ClusterMapRequest have no fields. */
export type EmptyRequestMessage = Record<string, never>;
export interface StatusRequestMessage {
  localOnly: boolean;
}
export interface MapNodeMessage {
  nodeId: string;
  clientAddress: string;
  peerAddress: string;
  zone: string;
  state: string;
  alive: boolean;
  lastHeartbeatMsAgo: Int64String;
  replicas: number;
  leaders: number;
  opsPerSecond: number;
}
export interface MapShardMessage {
  shardId: number;
  slotStart: number;
  slotEnd: number;
  epoch: Int64String;
  voters: string[];
  learners: string[];
  votersOutgoing: string[];
  leaderId: string;
  opsPerSecond: number;
}
export interface MapOperationMessage {
  id: Int64String;
  kind: string;
  shardId: number;
  fromNode: string;
  toNode: string;
  state: string;
  step: string;
  reason: string;
  ageMs: Int64String;
  splitSlot: number;
  newShardId: number;
}
export interface ClusterMapResponseMessage {
  version: Int64String;
  metaLeaderId: string;
  nodes: MapNodeMessage[];
  shards: MapShardMessage[];
  operations: MapOperationMessage[];
  fromMetaLeader: boolean;
  metaVoters: string[];
  metaLearners: string[];
}
export interface NodeAddRequestMessage {
  nodeId: string;
  clientAddress: string;
  peerAddress: string;
  zone: string;
}
export interface NodeStateRequestMessage {
  nodeId: string;
  state: string;
}
export interface ShardMoveRequestMessage {
  shardId: number;
  fromNode: string;
  toNode: string;
}
export interface ShardSplitRequestMessage {
  shardId: number;
  atSlot: number;
}
export interface MetaChangeResponseMessage {
  summary: string;
  operationId: Int64String;
  version: Int64String;
}
export interface PlannedChangeMessage {
  kind: string;
  shardId: number;
  fromNode: string;
  toNode: string;
  reason: string;
}
export interface RebalanceRequestMessage {
  apply: boolean;
}
export interface RebalanceResponseMessage {
  changes: PlannedChangeMessage[];
  summary: string;
}
export interface FailoverRequestMessage {
  nodeId: string;
}
export interface DeclareHotRequestMessage {
  key: Buffer;
  subCounters: number;
}
export interface RecoverUnsafeRequestMessage {
  shardId: number;
  iUnderstandDataLoss: boolean;
}
/** Heartbeat, ShardChange and ForwardWrite (node to node): a msgpack body (src/server/meta-wire.ts). */
export interface InternalRequestMessage {
  body: Buffer;
}
export interface InternalResponseMessage {
  body: Uint8Array;
}
export interface ShardBackupRequestMessage {
  shardId: number;
}
export interface ShardBackupChunkMessage {
  shardId: number;
  epoch: Int64String;
  slotStart: number;
  slotEnd: number;
  appliedIndex: Int64String;
  term: Int64String;
  clockMs: Int64String;
  counters: Int64String;
  totalBytes: Int64String;
  offset: Int64String;
  data: Buffer;
  last: boolean;
  sha256: string;
  leaderId: string;
  clusterName: string;
}

/**
 * A message as the server hands it to the encoder: every field optional (a missing scalar encodes
 * as its default) and a (u)int64 also as a JS number, which protobufjs encodes exactly while it is
 * a safe integer (test/unit/wire-int64.test.ts).
 */
export type Outgoing<T> = T extends Uint8Array
  ? T
  : T extends string
    ? string | number
    : T extends readonly (infer E)[]
      ? Outgoing<E>[]
      : T extends object
        ? { [K in keyof T]?: Outgoing<T[K]> }
        : T;
