/**
 * The region chaos checker (issue 21; regions-run.ts): judges the history of concurrent adds in
 * every region, made across inter-region latency, loss and partitions, once the replicators have
 * caught up after the heal.
 *
 * 1. Sums: per key, every region's global read must be the same value, equal to the sum of the
 *    acknowledged deltas (all regions) plus the deltas of SOME subset of the ambiguous operations,
 *    each at most once (deltas are signed: escrow decrements). Refused operations never count.
 * 2. Components: region B's copy of region A's component of a key equals A's own value of it (no
 *    component lost, stale or doubled once caught up).
 * 3. Escrow (the floor): checkEscrowSample() judges one region's escrow state read atomically (one
 *    GetMany on the key's shard) during the run: rights never below 0, and the region's
 *    conservation identity, rights - value + transferred out - received = -floor in the declaring
 *    region and 0 elsewhere (every escrow operation is one atomic batch that keeps it). With the
 *    received totals never above what the giver sent, these give global value - floor = rights held
 *    + rights in flight >= 0 at every instant, which a sum of global reads taken at different
 *    instants cannot show. At the end: every global >= floor, and rights held = value - floor once
 *    nothing is in flight.
 */
import { subsetSums } from "./checker.js";

export type RegionOpStatus = "ok" | "fail" | "ambiguous";

export interface RegionOp {
  id: number;
  region: string;
  /** declare: the escrow declaration's initial value (acknowledged before the workload). */
  kind: "add" | "escrow" | "declare";
  key: string;
  delta: number;
  status: RegionOpStatus;
  /** ms since the run started. */
  invokedAt: number;
  completedAt?: number;
  /** Escrow: rights received from peers on demand for it. */
  transferred?: number;
  error?: string;
}

/** Whether `target` is the sum of some subset of `deltas` (signed), each used at most once. */
export function signedSubsetReaches(deltas: readonly number[], target: number): boolean {
  const positive = deltas.filter((d) => d > 0);
  const negative = deltas.filter((d) => d < 0).map((d) => -d);
  const up = subsetSums(positive);
  const down = subsetSums(negative);
  // target = p - n with p a subset sum of the positives and n of the negatives' magnitudes.
  for (let p = Math.max(0, target); p < up.length; p++) if (up[p] === 1 && p - target < down.length && down[p - target] === 1) return true;
  return false;
}

export interface RegionKeyVerdict {
  key: string;
  acknowledged: string;
  ambiguous: number[];
  refused: number;
  /** Each region's global read after the drain (undefined: unreadable). */
  globals: Record<string, string | undefined>;
  ok: boolean;
  problem?: string;
}

/** Checks the final global reads of every key against the history (part 1 of the header). */
export function checkRegionSums(
  ops: readonly RegionOp[],
  globals: ReadonlyMap<string, Record<string, string | undefined>>,
): { keys: RegionKeyVerdict[]; problems: string[] } {
  const perKey = new Map<string, { ok: bigint; ambiguous: number[]; refused: number }>();
  for (const op of ops) {
    let entry = perKey.get(op.key);
    if (entry === undefined) perKey.set(op.key, (entry = { ok: 0n, ambiguous: [], refused: 0 }));
    if (op.status === "ok") entry.ok += BigInt(op.delta);
    else if (op.status === "ambiguous") entry.ambiguous.push(op.delta);
    else entry.refused++;
  }
  for (const key of globals.keys()) if (!perKey.has(key)) perKey.set(key, { ok: 0n, ambiguous: [], refused: 0 });
  const keys: RegionKeyVerdict[] = [];
  const problems: string[] = [];
  for (const key of [...perKey.keys()].sort()) {
    const entry = perKey.get(key)!;
    const read = globals.get(key) ?? {};
    const verdict: RegionKeyVerdict = {
      key,
      acknowledged: entry.ok.toString(),
      ambiguous: entry.ambiguous,
      refused: entry.refused,
      globals: read,
      ok: true,
    };
    const expected = `acknowledged ${entry.ok} + a subset of ambiguous [${entry.ambiguous.join(",")}]`;
    const values = Object.entries(read);
    if (values.length === 0 || values.some(([, value]) => value === undefined)) {
      verdict.problem = `${key}: no final global read in every region (${JSON.stringify(read)})`;
    } else if (new Set(values.map(([, value]) => value)).size > 1) {
      verdict.problem = `${key}: the regions disagree after the drain: ${values.map(([r, v]) => `${r} ${v}`).join(", ")}`;
    } else {
      const extra = BigInt(values[0]![1]!) - entry.ok;
      if (!signedSubsetReaches(entry.ambiguous, Number(extra)))
        verdict.problem = `${key}: global ${values[0]![1]} is not ${expected} (${extra < 0n ? "LOST" : "COUNTED TWICE or a refused op counted"}: ${extra})`;
    }
    if (verdict.problem !== undefined) {
      verdict.ok = false;
      problems.push(verdict.problem);
    }
    keys.push(verdict);
  }
  return { keys, problems };
}

/** One region's escrow state of one key, read in one GetMany (escrowState()). */
export interface EscrowSample {
  atMs: number;
  region: string;
  key: string;
  rights: bigint;
  value: bigint;
  /** Per other region: transferred out to it, received from it. */
  links: Array<{ region: string; out: bigint; received: bigint }>;
}

/**
 * Judges one sample (part 3 of the header): `floor` and whether this region declared the key;
 * `maxReceived` holds, per "key giver>taker", the largest received total seen in any earlier sample,
 * which the giver's out total (monotone) read now must not be below. Updates `maxReceived`.
 */
export function checkEscrowSample(
  sample: EscrowSample,
  floor: bigint,
  declaredHere: boolean,
  maxReceived: Map<string, bigint>,
  earlierReceived: ReadonlyMap<string, bigint>,
): string[] {
  const problems: string[] = [];
  const at = `${sample.region} ${sample.key} at ${(sample.atMs / 1000).toFixed(1)} s`;
  if (sample.rights < 0n) problems.push(`FLOOR: ${at}: rights ${sample.rights} below 0`);
  let out = 0n;
  let received = 0n;
  for (const link of sample.links) {
    out += link.out;
    received += link.received;
    const seen = earlierReceived.get(`${sample.key} ${sample.region}>${link.region}`);
    if (seen !== undefined && link.out < seen)
      problems.push(`FLOOR: ${at}: sent ${link.out} to ${link.region}, which had already received ${seen}: rights created`);
    const name = `${sample.key} ${link.region}>${sample.region}`;
    if ((maxReceived.get(name) ?? 0n) < link.received) maxReceived.set(name, link.received);
  }
  const expected = declaredHere ? -floor : 0n;
  const identity = sample.rights - sample.value + out - received;
  if (identity !== expected)
    problems.push(
      `FLOOR: ${at}: rights ${sample.rights} - value ${sample.value} + out ${out} - received ${received} = ${identity}, not ${expected}: ` +
        "an escrow operation was not atomic",
    );
  return problems;
}
