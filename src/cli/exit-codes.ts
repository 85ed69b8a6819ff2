import { AmbiguousError, TallyError } from "../util/errors.js";
import { ClusterUnreachableError } from "../client/errors.js";

/** tallyctl's exit codes; scripts branch on them, so they never change meaning. */
export const EXIT = Object.freeze({
  ok: 0,
  /** A definite error: the cluster answered no (nothing was applied). */
  error: 1,
  usage: 2,
  unreachable: 3,
  /** A mutation may or may not have been applied. */
  ambiguous: 4,
  /** status: the cluster serves every shard, with less redundancy (a node down); endpoint health: an endpoint is unhealthy. */
  degraded: 5,
  /** status: some shard has no leader, so part of the key space cannot be written. */
  unavailable: 6,
});

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A bad command line: exit 2 with the message. */
export class UsageError extends Error {
  override name = "UsageError";
}

export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof ClusterUnreachableError) return EXIT.unreachable;
  if (error instanceof AmbiguousError) return EXIT.ambiguous;
  if (error instanceof TallyError && error.code === "AMBIGUOUS") return EXIT.ambiguous;
  return EXIT.error;
}

/** A command's output with an exit code that is not an error's: status degraded, an endpoint unhealthy. */
export class WithExitCode {
  constructor(
    readonly output: string | object,
    readonly exitCode: ExitCode,
  ) {}
}
