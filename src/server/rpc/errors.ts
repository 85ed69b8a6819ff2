/**
 * The server's side of the one error mapping (src/api/error-details.ts): typed errors travel as
 * ErrorInfo, in trailers tally-error-bin and grpc-status-details-bin (the standard rich error
 * model, docs/errors-wire.md); anything else is a bug on this side, logged here and reported as
 * INTERNAL.
 */
import type * as grpc from "@grpc/grpc-js";
import { errorToErrorInfo, errorToServiceError, type ErrorInfo } from "../../api/error-details.js";
import { AssertionError } from "../../util/assert.js";
import { TallyError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";

function logUnexpected(error: unknown, log: Logger): void {
  if (error instanceof TallyError) return;
  if (error instanceof AssertionError) log.error({ err: error }, "assertion failed while serving a request");
  else log.error({ err: error }, "unexpected error while serving a request");
}

export function errorInfoOf(error: unknown, log: Logger): ErrorInfo {
  logUnexpected(error, log);
  return errorToErrorInfo(error);
}

export function toServiceError(error: unknown, log: Logger): grpc.ServiceError {
  logUnexpected(error, log);
  return errorToServiceError(error);
}

/**
 * Ends a streaming call with the error's status. grpc-js sends the status from the stream's own
 * 'error' listener (pendingStatus, then end()); call.destroy(error) skips _final, so no status is
 * ever sent and the client waits forever.
 */
export function failStream(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  error: unknown,
  log: Logger,
): void {
  if (call.cancelled || call.destroyed || call.writableEnded) return;
  call.emit("error", toServiceError(error, log));
}
