/**
 * google.rpc.Status with ErrorInfo and RetryInfo details, encoded and decoded by protobufjs
 * reflection over proto/google/rpc/*.proto: a codec independent of src/api/google-rpc-status.ts,
 * to check that one against and to play a server that sends only the standard trailer.
 * protobufjs is installed with @grpc/proto-loader; tally does not depend on it directly.
 */
import { resolve } from "node:path";
import protobuf from "protobufjs";

const protoDir = resolve(import.meta.dirname, "..", "..", "proto");
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith("google/rpc/") ? resolve(protoDir, target) : target);
root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], { keepCase: true });

const statusType = root.lookupType("google.rpc.Status");
const anyType = root.lookupType("google.protobuf.Any");
const errorInfoType = root.lookupType("google.rpc.ErrorInfo");
const retryInfoType = root.lookupType("google.rpc.RetryInfo");

export const ERROR_INFO_URL = "type.googleapis.com/google.rpc.ErrorInfo";
export const RETRY_INFO_URL = "type.googleapis.com/google.rpc.RetryInfo";

export interface ReflectedDetail {
  type_url: string;
  /** Set when type_url is ErrorInfo's. */
  errorInfo?: { reason: string; domain: string; metadata: Record<string, string> };
  /** Set when type_url is RetryInfo's; seconds as a decimal string (int64). */
  retryInfo?: { retry_delay: { seconds: string; nanos: number } | null };
}

export interface ReflectedStatus {
  code: number;
  message: string;
  details: ReflectedDetail[];
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, defaults: true };

export function decodeStatusByReflection(bytes: Uint8Array): ReflectedStatus {
  const status = statusType.toObject(statusType.decode(bytes), { ...TO_OBJECT, bytes: Buffer }) as {
    code: number;
    message: string;
    details: Array<{ type_url: string; value: Buffer }>;
  };
  return {
    code: status.code,
    message: status.message,
    details: status.details.map((detail) => {
      if (detail.type_url === ERROR_INFO_URL)
        return {
          type_url: detail.type_url,
          errorInfo: errorInfoType.toObject(errorInfoType.decode(detail.value), TO_OBJECT) as NonNullable<ReflectedDetail["errorInfo"]>,
        };
      if (detail.type_url === RETRY_INFO_URL)
        return {
          type_url: detail.type_url,
          retryInfo: retryInfoType.toObject(retryInfoType.decode(detail.value), TO_OBJECT) as NonNullable<ReflectedDetail["retryInfo"]>,
        };
      return { type_url: detail.type_url };
    }),
  };
}

export interface StatusToEncode {
  code: number;
  message: string;
  errorInfo?: { reason: string; domain: string; metadata: Record<string, string> };
  retryDelay?: { seconds: number; nanos: number };
  /** Details of other types, sent before the ones above (as another service might). */
  otherDetails?: Array<{ type_url: string; value: Uint8Array }>;
}

export function encodeStatusByReflection(status: StatusToEncode): Buffer {
  const details = [...(status.otherDetails ?? [])];
  if (status.errorInfo !== undefined)
    details.push({ type_url: ERROR_INFO_URL, value: errorInfoType.encode(errorInfoType.fromObject(status.errorInfo)).finish() });
  if (status.retryDelay !== undefined)
    details.push({
      type_url: RETRY_INFO_URL,
      value: retryInfoType.encode(retryInfoType.fromObject({ retry_delay: status.retryDelay })).finish(),
    });
  const message = statusType.fromObject({
    code: status.code,
    message: status.message,
    details: details.map((detail) => anyType.fromObject(detail)),
  });
  return Buffer.from(statusType.encode(message).finish());
}
