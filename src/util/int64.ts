/**
 * The 64-bit integer bounds, defined once (STYLE.md: one int64 module). Counter values, deltas,
 * floors and the proto's int64/sint64 fields are bigint in [INT64_MIN, INT64_MAX] everywhere: a
 * value outside it is refused at the edge, never rounded or wrapped.
 */

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
/** The largest uint64 (the proto's uint64 fields: epochs, versions). */
export const UINT64_MAX = 2n ** 64n - 1n;

/** This machine stores typed arrays (a BigInt64Array's values among them) little-endian. */
export const NATIVE_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
