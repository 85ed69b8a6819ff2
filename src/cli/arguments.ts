/**
 * Parsers of tallyctl's argument and option values. Each throws a UsageError (exit 2) that names
 * the argument and quotes what was given.
 */
import { parseDecimalBigInt } from "../client/values.js";
import { UsageError } from "./exit-codes.js";

/** A signed 64-bit integer, kept exact as a bigint. */
export function int64Argument(name: string): (text: string) => bigint {
  return (text) => {
    const value = parseDecimalBigInt(text);
    if (value === undefined) throw new UsageError(`${name} must be an integer, got ${JSON.stringify(text)}`);
    return value;
  };
}

/** An unsigned 64-bit integer (a version, a log index), kept exact as a bigint. */
export function uint64Argument(name: string): (text: string) => bigint {
  return (text) => {
    const value = parseDecimalBigInt(text);
    if (value === undefined || value < 0n) throw new UsageError(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
    return value;
  };
}

export function nonNegativeArgument(name: string): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!(Number.isSafeInteger(value) && value >= 0))
      throw new UsageError(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
    return value;
  };
}

export function positiveArgument(name: string): (text: string) => number {
  const parse = nonNegativeArgument(name);
  return (text) => {
    const value = parse(text);
    if (value === 0) throw new UsageError(`${name} must be positive`);
    return value;
  };
}

export function nodeIdArgument(name: string): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!(Number.isSafeInteger(value) && value > 0))
      throw new UsageError(`${name} must be a node id (a positive integer), got ${JSON.stringify(text)}`);
    return value;
  };
}

/** SHARD: a shard id is a uint32 above 0. */
export function shardIdArgument(text: string): number {
  const value = Number(text);
  if (!(Number.isSafeInteger(value) && value > 0 && value <= 0xffff_ffff))
    throw new UsageError(`SHARD must be a shard id (a positive integer), got ${JSON.stringify(text)}`);
  return value;
}
