/**
 * The client library's public surface (nats.js mod.ts style): what users import. Internals
 * (connections, routing table, sessions) stay unexported.
 */
export { TallyClient } from "./client.js";
export type {
  AcquireResult,
  AddModeOptions,
  AddOptions,
  AggregateResult,
  BatchOp,
  CallOptions,
  ClusterStatus,
  Consistency,
  GroupStatus,
  MutationResult,
  NodeStatus,
  PeerLag,
  PrefixReadOptions,
  ReadOptions,
  ReadResult,
  SetOptions,
  ShardAnswer,
  TallyClientOptions,
  TopKResult,
  UniqueCountResult,
  WindowAddOptions,
  WindowAddResult,
  WindowAggregate,
  WindowAtResult,
  WindowPoint,
  WindowRangeResult,
  WatchBatch,
  WatchEvent,
  WatchOptions,
} from "./types.js";
export type { ClientTlsOptions } from "../util/tls.js";
export type { AddMode, EventualAddResult, EventualReadOptions, EventualReadResult } from "./eventual.js";
export type { Aggregator, AggregatorOptions } from "./aggregator.js";
export type { ReplicaRoute, RoutesSnapshot, ShardRoute } from "./routing.js";
export type { HotKeyRoute } from "./hot.js";
export type { Fence, Int64Input, Key } from "./values.js";
export { BATCH_OPS_MAX, INT64_MAX, INT64_MIN, KEY_BYTES_MAX, UINT64_MAX } from "./values.js";
export {
  AmbiguousOperationError,
  BatchError,
  ClientClosedError,
  ClusterUnreachableError,
  TimeoutError,
  type AmbiguousOperation,
  type BatchOutcome,
  type MutationKind,
} from "./errors.js";
export {
  ERROR_DETAILS_METADATA_KEY,
  decodeErrorInfo,
  decodeServiceError,
  encodeErrorInfo,
  errorInfoFromMetadata,
  errorInfoToError,
  errorInfoToMetadata,
  errorToErrorInfo,
  errorToServiceError,
  type ErrorInfo,
  type ErrorInfoExtras,
} from "../api/error-details.js";
export { GRPC_STATUS_BY_ERROR_CODE, errorCodeForGrpcStatus, grpcStatusForErrorCode } from "../api/status-codes.js";
export * from "../util/errors.js";
export { RegionReplicator, type RegionReplicatorOptions, type ReplicatorStatus, type ReplicatorBatchEvent } from "./region-replicator.js";
export { globalGet, listRegions, setRegionActive, type GlobalReadResult, type RegionComponent, type RegionEntry } from "./region-reads.js";
export { applyComponents, type ComponentUpdate, type ApplyOutcome } from "./region-apply.js";
export {
  applyTransfers,
  escrowAdd,
  escrowDeclare,
  escrowState,
  escrowTransfer,
  type EscrowAddOptions,
  type EscrowAddResult,
  type EscrowPeer,
  type EscrowRegionState,
  type EscrowStore,
  type TransferResult,
  type TransferUpdate,
} from "./escrow.js";
