/**
 * Assertions that stay on in production (TigerBeetle style). A failed assertion is a programmer
 * error: it throws AssertionError and the process is expected to crash rather than continue with
 * a broken invariant. Expected failures use the typed errors in errors.ts instead.
 */
export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = "unreachable"): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
