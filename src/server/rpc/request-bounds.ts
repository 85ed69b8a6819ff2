/**
 * Bounds on a request's shape, checked on its wire bytes before protobufjs decodes them.
 *
 * Decoding is the expensive step a request can force on the node's only thread: protobufjs makes
 * an object per field occurrence (a 4 MiB GetMany of 1-byte keys is 1.4 M Buffers, ~1.3 s of
 * decoding), and a singular field sent many times is decoded every time (the last one wins). So
 * before decoding, one pass over the bytes, allocating nothing per field, checks:
 *   - the protobuf wire format: tags, varints of at most 10 bytes, lengths inside the message,
 *     no groups, and each field of tally.proto in its declared wire type (a repeated scalar also
 *     packed);
 *   - field occurrences in the whole request, nested messages included (REQUEST_FIELDS_MAX);
 *   - elements of each repeated field in one message (`repeatedMax`: limits.maxBatchOps for keys
 *     and ops, UNIQUE_ITEMS_MAX for a unique add's items);
 *   - the bytes of every unique-add item in the request together (`itemBytesMax`: they all land in
 *     one log entry, so limits.maxEntryBytes).
 * The size of the whole message is bounded before this, by grpc-js on the length prefix
 * (limits.maxRequestBytes), and credentials are checked before any byte of it is read
 * (admission.ts).
 *
 * A request that fails here, or that protobufjs then fails to decode, becomes a RefusedRequest
 * instead of an exception: grpc-js would answer a throwing deserializer with INTERNAL "Error
 * deserializing request", and bad input is INVALID_ARGUMENT.
 *
 * Cost: one pass over at most limits.maxRequestBytes, stopping at the first bound exceeded; no
 * allocation except a counter array per message instance that has repeated fields.
 */
import type * as grpc from "@grpc/grpc-js";
import type * as protoLoader from "@grpc/proto-loader";
import { UNIQUE_ITEMS_MAX } from "../../shard/commands.js";
import { assert } from "../../util/assert.js";
import { InvalidArgumentError, type TallyError } from "../../util/errors.js";
import type { Limits } from "../config/config.js";

/**
 * Field occurrences in one request. The largest valid request, 10,000 batch ops each with every
 * field set (add: key, delta, has_floor, floor, ttl_ms), has ~60,000; decoding 100,000 small
 * fields takes ~80 ms, well inside an election timeout.
 */
export const REQUEST_FIELDS_MAX = 100_000;

/** Nesting is fixed by tally.proto (PipelineRequest > BatchRequest > BatchOp > UniqueAddOp = 4); this catches a cycle. */
const DEPTH_MAX = 16;

export interface RequestBounds {
  /** Field occurrences in one request, nested ones included; each element of a repeated field counts. */
  fieldsMax: number;
  /** Elements of a repeated field in one message, by the field's name ("tally.v1.GetManyRequest.keys"). */
  repeatedMax(field: string): number;
  /** Repeated bytes fields whose element bytes count toward itemBytesMax, by name. */
  itemFields: ReadonlySet<string>;
  /** Total bytes of the elements of itemFields in one request. */
  itemBytesMax: number;
}

/** A unique add's items: its elements count toward itemBytesMax, and at most UNIQUE_ITEMS_MAX per op. */
const UNIQUE_ITEMS_FIELD = "tally.v1.UniqueAddOp.items";

/**
 * tally.proto's bounds under these limits: every repeated field at most limits.maxBatchOps
 * elements (keys, ops, hot_sub_counters), a unique add's items at most UNIQUE_ITEMS_MAX, and the
 * items of one request at most limits.maxEntryBytes together.
 */
export function tallyRequestBounds(limits: Pick<Limits, "maxBatchOps" | "maxEntryBytes">): RequestBounds {
  return {
    fieldsMax: REQUEST_FIELDS_MAX,
    repeatedMax: (field) => (field === UNIQUE_ITEMS_FIELD ? UNIQUE_ITEMS_MAX : limits.maxBatchOps),
    itemFields: new Set([UNIQUE_ITEMS_FIELD]),
    itemBytesMax: limits.maxEntryBytes,
  };
}

/** A request refused before or during decoding; `id` is a Pipeline request's id when it could be read. */
export class RefusedRequest {
  constructor(
    readonly error: TallyError,
    readonly id?: string,
  ) {}
}

// ---- the shape of tally.proto's messages, from proto-loader's descriptors ----

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

interface FieldShape {
  /** "tally.v1.GetManyRequest.keys", as messages and bounds name it (the .proto's snake_case). */
  name: string;
  wireType: number;
  repeated: boolean;
  /** A repeated scalar may also come packed (one length-delimited run of values). */
  packable: boolean;
  /** Index into the message's per-instance counters when repeated, else -1. */
  counter: number;
  repeatedMax: number;
  countsItemBytes: boolean;
  /** The nested message's type name, for TYPE_MESSAGE fields. */
  messageType: string | undefined;
}

interface MessageShape {
  name: string;
  fields: Map<number, FieldShape>;
  repeatedCount: number;
  /** Set once every nested message type is resolved. */
  nested: Map<number, MessageShape>;
}

const WIRE_TYPE_OF: Readonly<Record<string, number>> = {
  TYPE_DOUBLE: WIRE_FIXED64,
  TYPE_FIXED64: WIRE_FIXED64,
  TYPE_SFIXED64: WIRE_FIXED64,
  TYPE_FLOAT: WIRE_FIXED32,
  TYPE_FIXED32: WIRE_FIXED32,
  TYPE_SFIXED32: WIRE_FIXED32,
  TYPE_INT32: WIRE_VARINT,
  TYPE_INT64: WIRE_VARINT,
  TYPE_UINT32: WIRE_VARINT,
  TYPE_UINT64: WIRE_VARINT,
  TYPE_SINT32: WIRE_VARINT,
  TYPE_SINT64: WIRE_VARINT,
  TYPE_BOOL: WIRE_VARINT,
  TYPE_ENUM: WIRE_VARINT,
  TYPE_STRING: WIRE_LENGTH,
  TYPE_BYTES: WIRE_LENGTH,
  TYPE_MESSAGE: WIRE_LENGTH,
};

interface DescriptorField {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** Builds (and caches in `shapes`) the shape of message type `fullName` and every type it nests. */
function shapeOf(
  definition: protoLoader.PackageDefinition,
  fullName: string,
  bounds: RequestBounds,
  shapes: Map<string, MessageShape>,
): MessageShape {
  const known = shapes.get(fullName);
  if (known !== undefined) return known;
  const type = definition[fullName] as protoLoader.MessageTypeDefinition<object, object> | undefined;
  assert(type !== undefined && "type" in type, `no message type ${fullName} in the package definition`);
  const packageName = fullName.slice(0, fullName.lastIndexOf("."));
  const shape: MessageShape = { name: fullName, fields: new Map(), repeatedCount: 0, nested: new Map() };
  shapes.set(fullName, shape);
  for (const field of (type.type as { field: DescriptorField[] }).field) {
    const wireType = WIRE_TYPE_OF[field.type];
    assert(wireType !== undefined, `${fullName}.${field.name}: unsupported field type ${field.type}`);
    const repeated = field.label === "LABEL_REPEATED";
    const name = `${fullName}.${snakeCase(field.name)}`;
    const messageType = field.type === "TYPE_MESSAGE" ? resolveTypeName(definition, packageName, field.typeName) : undefined;
    shape.fields.set(field.number, {
      name,
      wireType,
      repeated,
      packable: repeated && wireType !== WIRE_LENGTH,
      counter: repeated ? shape.repeatedCount++ : -1,
      repeatedMax: repeated ? bounds.repeatedMax(name) : 0,
      countsItemBytes: bounds.itemFields.has(name),
      messageType,
    });
  }
  for (const [number, field] of shape.fields) {
    if (field.messageType !== undefined) shape.nested.set(number, shapeOf(definition, field.messageType, bounds, shapes));
  }
  return shape;
}

function resolveTypeName(definition: protoLoader.PackageDefinition, packageName: string, typeName: string): string {
  const bare = typeName.startsWith(".") ? typeName.slice(1) : typeName;
  for (const candidate of [`${packageName}.${bare}`, bare]) if (definition[candidate] !== undefined) return candidate;
  assert(false, `cannot resolve message type ${typeName} from package ${packageName}`);
}

// ---- the scan ----

/** A bound exceeded (the bytes are well-formed so far) or malformed bytes: both INVALID_ARGUMENT. */
class ScanError extends InvalidArgumentError {
  constructor(
    message: string,
    readonly malformed: boolean,
  ) {
    super(message);
  }
}

interface ScanState {
  fields: number;
  itemBytes: number;
  readonly bounds: RequestBounds;
}

function malformed(message: string, position: number): ScanError {
  return new ScanError(`malformed request: ${message} at byte ${position}`, true);
}

/**
 * The value of the varint readVarint read last (exact below 2^53). A module variable rather than
 * a returned object: the scan reads two or three varints per field of every request, and must not
 * allocate per field.
 */
let varintValue = 0;

/** Reads a varint of at most 10 bytes ending before `end` into varintValue; returns the position after it. */
function readVarint(bytes: Uint8Array, position: number, end: number): number {
  // One byte (tags and lengths below 128, small ids and counts): the common case.
  if (position < end) {
    const first = bytes[position]!;
    if ((first & 0x80) === 0) {
      varintValue = first;
      return position + 1;
    }
  }
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (position + i >= end) throw malformed("truncated varint", position);
    const byte = bytes[position + i]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) {
      varintValue = value;
      return position + i + 1;
    }
  }
  throw malformed("varint longer than 10 bytes", position);
}

function countField(state: ScanState, n: number): void {
  state.fields += n;
  if (state.fields > state.bounds.fieldsMax)
    throw new ScanError(`request: more than ${state.bounds.fieldsMax} fields (split it into smaller requests; docs/limits.md)`, false);
}

function countRepeated(counts: number[], field: FieldShape, n: number): void {
  const count = (counts[field.counter] ?? 0) + n;
  counts[field.counter] = count;
  if (count > field.repeatedMax) throw new ScanError(`${shortName(field.name)}: more than ${field.repeatedMax} elements`, false);
}

function shortName(field: string): string {
  return field.slice(field.lastIndexOf(".", field.lastIndexOf(".") - 1) + 1);
}

/** Elements in a packed run of `wireType` values occupying [start, end). */
function packedCount(bytes: Uint8Array, start: number, end: number, wireType: number): number {
  if (wireType === WIRE_FIXED64 || wireType === WIRE_FIXED32) {
    const size = wireType === WIRE_FIXED64 ? 8 : 4;
    if ((end - start) % size !== 0) throw malformed(`packed run of ${end - start} bytes is not a multiple of ${size}`, start);
    return (end - start) / size;
  }
  let count = 0;
  let run = 0;
  for (let position = start; position < end; position++) {
    run++;
    if (run > 10) throw malformed("varint longer than 10 bytes", position);
    if ((bytes[position]! & 0x80) === 0) {
      count++;
      run = 0;
    }
  }
  if (run !== 0) throw malformed("truncated varint in a packed run", end);
  return count;
}

function scanMessage(bytes: Uint8Array, start: number, end: number, shape: MessageShape, state: ScanState, depth: number): void {
  if (depth > DEPTH_MAX) throw malformed(`messages nested deeper than ${DEPTH_MAX}`, start);
  const counts: number[] = shape.repeatedCount === 0 ? [] : new Array<number>(shape.repeatedCount).fill(0);
  let position = start;
  while (position < end) {
    const afterTag = readVarint(bytes, position, end);
    const tag = varintValue;
    const number = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (number === 0 || number > 0x1fffffff) throw malformed(`field number ${number}`, position);
    countField(state, 1);
    let next: number;
    let payload = -1;
    switch (wireType) {
      case WIRE_VARINT:
        next = readVarint(bytes, afterTag, end);
        break;
      case WIRE_FIXED64:
      case WIRE_FIXED32:
        next = afterTag + (wireType === WIRE_FIXED64 ? 8 : 4);
        if (next > end) throw malformed("truncated fixed-width field", afterTag);
        break;
      case WIRE_LENGTH: {
        payload = readVarint(bytes, afterTag, end);
        const length = varintValue;
        next = payload + length;
        if (next > end) throw malformed(`length ${length} runs past the end of the message`, afterTag);
        break;
      }
      default:
        throw malformed(`wire type ${wireType} (groups and unknown wire types are not accepted)`, position);
    }
    const field = shape.fields.get(number);
    if (field !== undefined) {
      if (wireType === field.wireType) {
        if (field.repeated) countRepeated(counts, field, 1);
        if (field.countsItemBytes) {
          state.itemBytes += next - payload;
          if (state.itemBytes > state.bounds.itemBytesMax)
            throw new ScanError(
              `${shortName(field.name)}: more than ${state.bounds.itemBytesMax} bytes of items in one request (limits.maxEntryBytes)`,
              false,
            );
        }
        const nested = shape.nested.get(number);
        if (nested !== undefined) scanMessage(bytes, payload, next, nested, state, depth + 1);
      } else if (field.packable && wireType === WIRE_LENGTH) {
        const elements = packedCount(bytes, payload, next, field.wireType);
        countField(state, elements);
        countRepeated(counts, field, elements);
      } else {
        throw malformed(`${shortName(field.name)} has wire type ${wireType}, expected ${field.wireType}`, position);
      }
    }
    position = next;
  }
}

/** The Pipeline request id (field 1, a varint) if the top level of `bytes` has a readable one. */
function pipelineIdOf(bytes: Uint8Array): string | undefined {
  let position = 0;
  try {
    while (position < bytes.length) {
      const afterTag = readVarint(bytes, position, bytes.length);
      const tag = varintValue;
      const wireType = tag % 8;
      if (tag === 8) {
        const next = readVarint(bytes, afterTag, bytes.length);
        let id = 0n;
        for (let i = next - 1; i >= afterTag; i--) id = (id << 7n) | BigInt(bytes[i]! & 0x7f);
        return BigInt.asUintN(64, id).toString();
      }
      if (wireType === WIRE_VARINT) position = readVarint(bytes, afterTag, bytes.length);
      else if (wireType === WIRE_FIXED64) position = afterTag + 8;
      else if (wireType === WIRE_FIXED32) position = afterTag + 4;
      else if (wireType === WIRE_LENGTH) {
        const payload = readVarint(bytes, afterTag, bytes.length);
        position = payload + varintValue;
      } else return undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Checks `bytes` as a message of `shape` against the bounds; throws the InvalidArgumentError that says what is wrong. */
function checkRequest(bytes: Uint8Array, shape: MessageShape, bounds: RequestBounds): void {
  scanMessage(bytes, 0, bytes.length, shape, { fields: 0, itemBytes: 0, bounds }, 0);
}

/**
 * `decode` behind the bounds: the decoded request, or a RefusedRequest (never an exception). The
 * id of a refused PipelineRequest is kept when only a bound failed, so its stream can answer that
 * one op and go on.
 */
export function boundedDecoder<T>(
  definition: protoLoader.PackageDefinition,
  requestType: string,
  decode: (bytes: Buffer) => T,
  bounds: RequestBounds,
): (bytes: Buffer) => T | RefusedRequest {
  const shape = shapeOf(definition, requestType, bounds, new Map());
  const withId = requestType.endsWith(".PipelineRequest");
  return (bytes) => {
    try {
      checkRequest(bytes, shape, bounds);
    } catch (error) {
      if (!(error instanceof ScanError)) throw error;
      const id = withId && !error.malformed ? pipelineIdOf(bytes) : undefined;
      return new RefusedRequest(error, id);
    }
    try {
      return decode(bytes);
    } catch (error) {
      return new RefusedRequest(new InvalidArgumentError(`malformed request: ${(error as Error).message}`));
    }
  };
}

/**
 * A copy of a service definition whose request deserializers are bounded (boundedDecoder), for
 * server.addService. The request type of each method is found by the method's path in the
 * package definition.
 */
export function boundedService(
  definition: protoLoader.PackageDefinition,
  serviceName: string,
  bounds: RequestBounds,
): grpc.ServiceDefinition {
  const service = definition[serviceName] as unknown as Record<
    string,
    protoLoader.MethodDefinition<object, object> & { requestType: { type: { name: string } } }
  >;
  assert(service !== undefined, `no service ${serviceName}`);
  const packageName = serviceName.slice(0, serviceName.lastIndexOf("."));
  const bounded: Record<string, unknown> = {};
  for (const [method, attributes] of Object.entries(service)) {
    const requestType = `${packageName}.${attributes.requestType.type.name}`;
    bounded[method] = { ...attributes, requestDeserialize: boundedDecoder(definition, requestType, attributes.requestDeserialize, bounds) };
  }
  return bounded as unknown as grpc.ServiceDefinition;
}
