/**
 * Top-K over a key prefix served from an index kept as counters change, instead of a scan of the
 * shard's counters per query (issue 18). Not replicated state: each replica builds it from its own
 * applied state, and it answers exactly what a scan answers (topK() over every plain counter with
 * the prefix whose TTL is not due), which test/unit/topk-index.test.ts checks against a scan over
 * random adds, decrements, resets, TTLs, failed batches, splits and restores.
 *
 * Per prefix asked for (at most PREFIXES_MAX, least recently asked evicted), a TopSet: the best M
 * counters with the prefix in rank order (value descending, key ascending; M = capacityFor(k)),
 * with the invariant
 *
 *   (I) every counter with the prefix that is NOT in the set ranks after every counter in it;
 *       `complete` additionally says that no counter with the prefix is outside it.
 *
 * It follows the counters through the shard's change log (change-log.ts: every counter write and
 * deletion with its log index, the record watches read), pulled at each query rather than pushed:
 * the index remembers the applied index it has seen and, before answering, replays the changes
 * since, looking each changed key's current value up in the CounterTable. A changed key joins the
 * set when it ranks before the set's last entry (or the set is complete), leaves it when deleted or
 * when it falls behind the last entry; the set is cut back to M from the end. Both keep (I).
 *
 * Rebuilt by a scan (refill) when it cannot answer: fewer than k usable entries and not complete
 * (decrements pushed entries out), a new prefix or a larger k, or the change log no longer holds
 * every change since the last query (more than its capacity since: compacted), or the machine's
 * change log or counter table was replaced (shard image load, snapshot restore): the index never
 * trusts state it did not see change.
 *
 * The one change not in the change log is a range split removing the moved counters from the
 * parent (CounterStateMachine.removeWhere): it only removes keys. So every answer is checked: each
 * entry handed out is looked up in the table first; a key no longer there is dropped from the set
 * (a subset of the counters still satisfies (I)), and a value that differs from the table's (a
 * change the log missed, which should not happen) throws the whole index away and scans.
 *
 * Cost: a query after no writes is O(k) lookups; with writes, O(changes since the last query x
 * log M) plus a memmove of at most M pointers per change that enters or leaves a set; a refill is
 * one scan, O(n log M). Memory: at most PREFIXES_MAX x TOP_K_MAX entries, each a key copy and a
 * bigint.
 */
import { binaryString } from "../../kinds/codec.js";
import { compareRank, topK, TOP_K_MAX, type KeyValue } from "../../kinds/topk.js";
import { listedUnder } from "../keys.js";
import type { ChangeLog } from "../change-log.js";
import type { CounterTable } from "../counter-table.js";
import type { ShardState } from "../shard-state.js";

/** Prefixes with a set kept per shard; the least recently asked is dropped beyond this. */
export const PREFIXES_MAX = 16;
/** Entries kept beyond k, so that a few decrements do not force a scan: k + clamp(k, 64, 1,024), at most TOP_K_MAX. */
export function capacityFor(k: number): number {
  return Math.min(TOP_K_MAX, k + Math.min(Math.max(k, 64), 1024));
}

interface Ranked {
  readonly key: Uint8Array;
  value: bigint;
}

/** The best `capacity` counters with one prefix, in rank order, keeping (I). */
class TopSet {
  readonly entries: Ranked[] = [];
  readonly byName = new Map<string, Ranked>();
  complete = false;
  lastAsked = 0;

  constructor(
    readonly prefix: Uint8Array,
    readonly capacity: number,
  ) {}

  /** The position of the first entry that does not rank before `entry`. */
  private lowerBound(entry: KeyValue): number {
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareRank(this.entries[middle]!, entry) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  remove(name: string, entry: Ranked): void {
    const at = this.lowerBound(entry);
    this.entries.splice(at, 1);
    this.byName.delete(name);
  }

  private insert(name: string, entry: Ranked): void {
    this.entries.splice(this.lowerBound(entry), 0, entry);
    this.byName.set(name, entry);
    if (this.entries.length > this.capacity) {
      const dropped = this.entries.pop()!;
      this.byName.delete(binaryString(dropped.key));
      this.complete = false;
    }
  }

  /** The key (a view) now has `value`, or no longer exists as a counter (undefined). */
  update(key: Uint8Array, value: bigint | undefined): void {
    const name = binaryString(key);
    const cached = this.byName.get(name);
    if (cached !== undefined) {
      if (cached.value === value) return;
      this.remove(name, cached);
    }
    if (value === undefined) return;
    const entry: Ranked = { key: cached?.key ?? key.slice(), value };
    const last = this.entries[this.entries.length - 1];
    if (this.complete || (last !== undefined && compareRank(entry, last) < 0)) this.insert(name, entry);
  }

  /** Replaces the contents with a scan's: the best `capacity` of all `matching` counters. */
  fill(best: KeyValue[], matching: number): void {
    this.entries.length = 0;
    this.byName.clear();
    for (const entry of best) {
      const ranked: Ranked = { key: entry.key, value: entry.value };
      this.entries.push(ranked);
      this.byName.set(binaryString(entry.key), ranked);
    }
    this.complete = matching <= this.capacity;
  }
}

/** What a query needs of the shard besides the counters: whether a key's TTL is due at the read's clock. */
export type DueCheck = (key: Uint8Array) => boolean;

/** Stale: an entry whose value is not the table's (the set missed a change): start over with a scan. */
const STALE = Symbol("stale");

export class TopKIndex {
  private readonly sets = new Map<string, TopSet>();
  /** The change log and counter table the sets follow, and the applied index they have seen. */
  private log: ChangeLog;
  private table: CounterTable;
  private seenIndex: number;
  private asked = 0;
  /** Queries answered, and scans of the counters they took (refills and fallbacks): tests and metrics. */
  readonly stats = { queries: 0, scans: 0 };

  constructor(private readonly state: ShardState) {
    this.log = state.changeLog;
    this.table = state.counters;
    this.seenIndex = state.appliedIndex;
  }

  /** The shard's exact top k counters with the prefix, skipping keys whose TTL is due: what a scan gives. */
  topK(prefix: Uint8Array, k: number, isDue: DueCheck): KeyValue[] {
    this.stats.queries++;
    this.catchUp();
    const name = binaryString(prefix);
    const capacity = capacityFor(k);
    let set = this.sets.get(name);
    let fresh = false;
    if (set === undefined || set.capacity < capacity) {
      this.sets.delete(name);
      set = this.create(name, prefix, capacity);
      fresh = true;
    }
    set.lastAsked = ++this.asked;
    let answer = this.answer(set, k, isDue);
    if (answer === STALE) {
      this.sets.clear();
      set = this.create(name, prefix, capacity);
      answer = this.answer(set, k, isDue);
    } else if (answer === undefined && !fresh) {
      this.refill(set);
      answer = this.answer(set, k, isDue);
    }
    // A fresh scan's set holds the best `capacity` >= k counters; fewer than k usable only when
    // keys in it are due (TTL) and more exist beyond it: then the answer is a scan's.
    if (answer === undefined || answer === STALE) {
      this.stats.scans++;
      return topK(this.scan(prefix, isDue), k);
    }
    return answer;
  }

  /** Number of prefixes with a set (tests, metrics). */
  get prefixes(): number {
    return this.sets.size;
  }

  private create(name: string, prefix: Uint8Array, capacity: number): TopSet {
    if (this.sets.size >= PREFIXES_MAX) {
      let oldest: string | undefined;
      let oldestAsked = Infinity;
      for (const [setName, set] of this.sets) {
        if (set.lastAsked < oldestAsked) {
          oldest = setName;
          oldestAsked = set.lastAsked;
        }
      }
      this.sets.delete(oldest!);
    }
    const set = new TopSet(prefix.slice(), capacity);
    this.refill(set);
    this.sets.set(name, set);
    set.lastAsked = ++this.asked;
    return set;
  }

  /** Replays the changes since the last query into every set, or drops the sets when that is impossible. */
  private catchUp(): void {
    const state = this.state;
    if (state.changeLog !== this.log || state.counters !== this.table || this.seenIndex < state.changeLog.retainedAfter) {
      this.sets.clear();
      this.log = state.changeLog;
      this.table = state.counters;
      this.seenIndex = state.appliedIndex;
      return;
    }
    if (this.seenIndex === state.appliedIndex) return;
    if (this.sets.size > 0) {
      const sets = [...this.sets.values()];
      const matches = (key: Uint8Array) => sets.some((set) => listedUnder(key, set.prefix));
      const changes = this.log.since(this.seenIndex, matches, Number.MAX_SAFE_INTEGER);
      if (changes === undefined) {
        this.sets.clear();
      } else {
        const table = this.table;
        for (const change of changes) {
          const slot = table.find(change.key);
          const value = slot >= 0 && table.version(slot) !== 0 ? table.value(slot) : undefined;
          for (const set of sets) if (listedUnder(change.key, set.prefix)) set.update(change.key, value);
        }
      }
    }
    this.seenIndex = state.appliedIndex;
  }

  /**
   * The first k entries of the set that are still counters with the value the set holds and whose
   * TTL is not due; undefined when the set runs out first and is not complete (refill), STALE when
   * an entry's value is not the table's.
   */
  private answer(set: TopSet, k: number, isDue: DueCheck): KeyValue[] | undefined | typeof STALE {
    const table = this.table;
    const out: KeyValue[] = [];
    let gone: Ranked[] | undefined;
    for (const entry of set.entries) {
      const slot = table.find(entry.key);
      if (slot < 0 || table.version(slot) === 0) {
        (gone ??= []).push(entry); // removed by a split: not a counter here any more
        continue;
      }
      if (table.value(slot) !== entry.value) return STALE;
      if (isDue(entry.key)) continue;
      out.push({ key: entry.key.slice(), value: entry.value });
      if (out.length === k) break;
    }
    for (const entry of gone ?? []) set.remove(binaryString(entry.key), entry);
    return out.length === k || set.complete ? out : undefined;
  }

  private refill(set: TopSet): void {
    this.stats.scans++;
    let matching = 0;
    const all = this.scan(set.prefix, () => false);
    const counted = (function* () {
      for (const entry of all) {
        matching++;
        yield entry;
      }
    })();
    set.fill(topK(counted, set.capacity), matching);
  }

  /** Every counter with the prefix whose TTL is not due (keys are views: valid until the next apply). */
  private *scan(prefix: Uint8Array, isDue: DueCheck): Iterable<KeyValue> {
    const table = this.table;
    for (const slot of table.occupiedSlots()) {
      const key = table.keyView(slot);
      if (!listedUnder(key, prefix) || isDue(key)) continue;
      yield { key, value: table.value(slot) };
    }
  }
}
