/**
 * Escrow: a global floor across regions (docs/regions.md, "Escrow: a global floor"; ADR 0012), the
 * bounded counter of Balegas et al. (AntidoteDB) made exact by each region's log.
 *
 * Invariant, per escrowed key K with floor F: sum over regions of K's components - F = sum over
 * regions of the rights they hold + rights in flight (transferred out, not yet received), and no
 * region's rights are ever below 0. Hence the global value of K never goes below F.
 *
 * - An increment of d in region r adds d to K and d to r's rights, one atomic batch.
 * - A decrement of d in r subtracts d from K and from r's rights with floor 0, one atomic batch on
 *   K's shard (the rights key shares K's slot, escrow-keys.ts): without the rights, nothing changes
 *   and the caller gets FAILED_PRECONDITION.
 * - A transfer of t from s to r runs in s: rights_s -= t (floor 0) and out(s->r) += t, atomically.
 *   r learns out(s->r) (an absolute value that only grows) through its region replicator, or at
 *   once from the transfer's own reply; applyTransfers() adds to r's rights only the part above
 *   what r already received from s (a max-merge guarded by compare-and-set), so a replay, a
 *   duplicate or a late arrival adds nothing.
 * - A declaration in one region (once) grants that region initial - F rights with `initial` added.
 */
import { BatchError } from "./errors.js";
import { FailedPreconditionError, InvalidArgumentError, TallyError } from "../util/errors.js";
import type { TallyClient } from "./client.js";
import { describeKey, escrowKeys, receivingKey, rightsKeyOfReceiving, transferOutPrefix } from "./escrow-keys.js";
import { checkRegion } from "./region-keys.js";
import type { Key } from "./values.js";

/** What escrow needs of a cluster: reads of many keys, atomic batches. */
export type EscrowStore = Pick<TallyClient, "getMany" | "addBatch">;

export interface EscrowPeer {
  region: string;
  /** A client of that region's cluster (a transfer runs there). */
  client: EscrowStore;
}

export interface EscrowAddOptions {
  /** This region's name (messages, and to receive transfers from peers). */
  region?: string;
  /** On a decrement lacking rights: ask these regions, in order, for the shortfall, then retry once. */
  peers?: EscrowPeer[];
}

export interface EscrowAddResult {
  /** K's local component after the add. */
  value: bigint;
  /** The rights this region holds after it. */
  rights: bigint;
  /** Rights received from peers for it (on demand). */
  transferred: bigint;
}

function positive(amount: bigint, what: string): bigint {
  if (typeof amount !== "bigint" || amount <= 0n)
    throw new InvalidArgumentError(`${what} must be a positive integer, got ${String(amount)}`);
  return amount;
}

function isShortOfRights(error: unknown, rightsOp: number): boolean {
  return error instanceof BatchError && error.code === "FAILED_PRECONDITION" && (error.opIndex === undefined || error.opIndex === rightsOp);
}

/** Adds `delta` (non-zero) to escrowed `key` in this region: see the file header. */
export async function escrowAdd(store: EscrowStore, key: Key, delta: bigint, options: EscrowAddOptions = {}): Promise<EscrowAddResult> {
  if (typeof delta !== "bigint" || delta === 0n)
    throw new InvalidArgumentError(`escrow: delta must be a non-zero integer, got ${String(delta)}`);
  const keys = escrowKeys(key);
  const here = options.region === undefined ? undefined : checkRegion(options.region);
  const ops = [{ key: keys.key, delta }, delta > 0n ? { key: keys.rights, delta } : { key: keys.rights, delta, floor: 0n }];
  let transferred = 0n;
  for (let attempt = 0; ; attempt++) {
    try {
      const [value, rights] = await store.addBatch(ops);
      return { value: value!.value, rights: rights!.value, transferred };
    } catch (error) {
      if (!isShortOfRights(error, 1)) throw error;
      const [held] = await store.getMany([keys.rights]);
      const shortfall = -delta - held!.value;
      if (attempt === 0 && here !== undefined && options.peers !== undefined && options.peers.length > 0 && shortfall > 0n) {
        transferred += await gather(store, here, keys.key, shortfall, options.peers);
        if (transferred > 0n) continue;
      }
      throw new FailedPreconditionError(
        `escrow: region ${here ?? "(this)"} holds ${held!.value} rights to decrement ${describeKey(keys.key)}, needs ${-delta}` +
          (transferred > 0n ? ` (${transferred} received from peers on demand)` : "") +
          `: nothing changed; rights are held by the regions that added (tallyctl escrow status), move them with tallyctl escrow transfer`,
      );
    }
  }
}

/** Asks peers, in order, for up to `wanted` rights; returns how many arrived here. Peers that fail are skipped. */
async function gather(local: EscrowStore, here: string, key: Buffer, wanted: bigint, peers: EscrowPeer[]): Promise<bigint> {
  let got = 0n;
  for (const peer of peers) {
    if (got >= wanted) break;
    try {
      const [held] = await peer.client.getMany([escrowKeys(key).rights]);
      const amount = held!.value < wanted - got ? held!.value : wanted - got;
      if (amount <= 0n) continue;
      await escrowTransfer(peer.client, key, { from: peer.region, to: here, amount, receiver: local });
      got += amount;
    } catch {
      // Unreachable (a partition), or its rights were spent meanwhile: only availability suffers.
    }
  }
  return got;
}

export interface TransferOptions {
  from: string;
  to: string;
  amount: bigint;
  /** The receiving region's cluster: the transfer is applied there at once (else its replicator brings it). */
  receiver?: EscrowStore;
}

export interface TransferResult {
  /** The source's rights after the transfer. */
  rights: bigint;
  /** out(from -> to) after it: everything ever transferred on that link. */
  transferredTotal: bigint;
  /** Whether the receiver applied it now (false: its replicator will). */
  received: boolean;
}

/** Moves `amount` rights of `key` from region `from` (whose cluster `source` is) to region `to`. */
export async function escrowTransfer(source: EscrowStore, key: Key, options: TransferOptions): Promise<TransferResult> {
  const from = checkRegion(options.from);
  const to = checkRegion(options.to);
  if (from === to) throw new InvalidArgumentError(`escrow: a transfer from ${from} to itself`);
  const amount = positive(options.amount, "escrow: the amount");
  const keys = escrowKeys(key);
  let results;
  try {
    results = await source.addBatch([
      { key: keys.rights, delta: -amount, floor: 0n },
      { key: keys.out(to), delta: amount },
    ]);
  } catch (error) {
    if (!isShortOfRights(error, 0)) throw error;
    const [held] = await source.getMany([keys.rights]);
    throw new FailedPreconditionError(
      `escrow: region ${from} holds ${held!.value} rights of ${describeKey(keys.key)}, cannot transfer ${amount}: nothing changed`,
    );
  }
  const total = results[1]!.value;
  let received = false;
  if (options.receiver !== undefined) {
    try {
      await applyTransfers(options.receiver, from, to, [{ outKey: keys.out(to), value: total }]);
      received = true;
    } catch {
      // Committed in `from`; the receiver's replicator brings it (the apply is idempotent either way).
    }
  }
  return { rights: results[0]!.value, transferredTotal: total, received };
}

export interface TransferUpdate {
  /** The origin's transfer counter key (transferOutPrefix(to) + suffix). */
  outKey: Buffer;
  /** Its absolute value at the origin (it only grows). */
  value: bigint;
}

const CAS_ATTEMPTS_MAX = 16;

/** The max-merge guard: rights a transfer counter at `value` adds when `held` was received already (0: stale). */
export function receivedDelta(held: bigint, value: bigint): bigint {
  return value > held ? value - held : 0n;
}

/**
 * Applies transfer counters of region `from` towards `here` into `here`'s cluster: for each, the
 * rights grow by the part above what was already received, and the received counter moves up to
 * the value, in one atomic batch guarded by the received key's version. Returns the rights added.
 */
export async function applyTransfers(local: EscrowStore, from: string, here: string, updates: readonly TransferUpdate[]): Promise<bigint> {
  const newest = new Map<string, { received: Buffer; value: bigint }>();
  for (const update of updates) {
    const received = receivingKey(update.outKey, here, from);
    if (received === undefined) throw new InvalidArgumentError(`escrow: ${describeKey(update.outKey)} is not a transfer to ${here}`);
    const name = received.toString("latin1");
    const held = newest.get(name);
    if (held === undefined || update.value > held.value) newest.set(name, { received, value: update.value });
  }
  let added = 0n;
  for (const { received, value } of newest.values()) {
    const rights = rightsKeyOfReceiving(received, from);
    for (let attempt = 1; ; attempt++) {
      const [held] = await local.getMany([received]);
      const delta = receivedDelta(held!.value, value);
      if (delta === 0n) break;
      try {
        await local.addBatch([
          { op: "compareAndSet", key: received, expectedVersion: held!.version, value },
          { key: rights, delta },
        ]);
        added += delta;
        break;
      } catch (error) {
        if (!(error instanceof TallyError && error.code === "VERSION_MISMATCH") || attempt >= CAS_ATTEMPTS_MAX) throw error;
      }
    }
  }
  return added;
}

/** Transfer counter changes towards `here` among watched keys (the replicator feeds them in). */
export function isTransferTo(here: string, key: Uint8Array): boolean {
  const prefix = transferOutPrefix(here);
  return key.length > prefix.length && Buffer.from(key.subarray(0, prefix.length)).equals(prefix);
}

export interface DeclareOptions {
  floor: bigint;
  /** Added to the key with the declaration (default 0): the declaring region gets initial - floor rights. */
  initial?: bigint;
}

/**
 * Declares `key` escrowed with `floor`, in this region, once: refused if declared here before, if
 * the key already holds a value here, or if initial < floor. Declare in one region only.
 */
export async function escrowDeclare(store: EscrowStore, key: Key, options: DeclareOptions): Promise<{ rights: bigint }> {
  const keys = escrowKeys(key);
  const floor = options.floor;
  const initial = options.initial ?? 0n;
  if (typeof floor !== "bigint" || typeof initial !== "bigint")
    throw new InvalidArgumentError("escrow: floor and initial must be integers");
  if (initial < floor) throw new InvalidArgumentError(`escrow: the initial value ${initial} is below the floor ${floor}`);
  const [declared, value] = await store.getMany([keys.declared, keys.key]);
  if (declared!.value !== 0n) throw new FailedPreconditionError(`escrow: ${describeKey(keys.key)} is already declared in this region`);
  if (value!.value !== 0n)
    throw new FailedPreconditionError(
      `escrow: ${describeKey(keys.key)} already holds ${value!.value} here: declare escrow on a key before adding to it`,
    );
  const ops = [
    { op: "compareAndSet" as const, key: keys.declared, expectedVersion: declared!.version, value: 1n },
    { op: "set" as const, key: keys.floor, value: floor },
    { op: "compareAndSet" as const, key: keys.key, expectedVersion: value!.version, value: initial },
  ];
  try {
    await store.addBatch([...ops, { key: keys.rights, delta: initial - floor }]);
  } catch (error) {
    if (error instanceof TallyError && error.code === "VERSION_MISMATCH")
      throw new FailedPreconditionError(`escrow: ${describeKey(keys.key)} changed during the declaration: nothing changed, try again`);
    throw error;
  }
  return { rights: initial - floor };
}

export interface EscrowRegionState {
  /** Rights held here. */
  rights: bigint;
  /** K's local component. */
  value: bigint;
  /** The floor declared here, if any. */
  floor: bigint | undefined;
  /** Per other region: transferred out to it, received from it. */
  links: Array<{ region: string; out: bigint; received: bigint }>;
}

/** One region's escrow state of `key` (one GetMany, one shard), `others` naming the other regions. */
export async function escrowState(store: EscrowStore, key: Key, others: readonly string[]): Promise<EscrowRegionState> {
  const keys = escrowKeys(key);
  const read = await store.getMany([
    keys.rights,
    keys.key,
    keys.declared,
    keys.floor,
    ...others.flatMap((r) => [keys.out(r), keys.received(r)]),
  ]);
  return {
    rights: read[0]!.value,
    value: read[1]!.value,
    floor: read[2]!.value === 1n ? read[3]!.value : undefined,
    links: others.map((region, i) => ({ region, out: read[4 + 2 * i]!.value, received: read[5 + 2 * i]!.value })),
  };
}
