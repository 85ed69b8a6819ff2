/**
 * Raft core throughput: three in-process nodes over MemoryStorage, messages delivered in-process,
 * Readies handled in the documented order (persist, send, apply, advance). Measures the consensus
 * core alone: no disk, no network, no serialization.
 *
 * Scenarios:
 *   batched   - each entry is a length-prefixed batch of COMMANDS_PER_ENTRY 16-byte commands
 *               (what the server's leader-side batching produces); "proposals" are commands.
 *   unbatched - one 16-byte command per entry: the per-entry cost of the core.
 * Every replica decodes each applied batch (walks the length prefixes), so apply is not free.
 *
 * Output: one JSON line per scenario, then a human summary line.
 *   npx tsx bench/raft-core.ts            (BENCH_SECONDS=3 by default)
 */
import { createPrng } from "../src/util/prng.js";
import { EntryType, MemoryStorage, type Message, type RaftConfig, RawNode, Role } from "../src/raft/index.js";

const COMMAND_BYTES = 16;
const seconds = Number(process.env.BENCH_SECONDS ?? "3");

interface Replica {
  id: number;
  storage: MemoryStorage;
  node: RawNode;
  appliedCommands: number;
  appliedEntries: number;
}

function makeReplica(id: number): Replica {
  const storage = new MemoryStorage();
  RawNode.bootstrap(storage, [1, 2, 3]);
  const config: RaftConfig = {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    storage,
    maxSizePerMsg: 1 << 20,
    maxInflightMessages: 256,
    maxInflightBytes: 64 << 20,
    maxUncommittedEntriesBytes: 64 << 20,
    maxCommittedSizePerReady: 16 << 20,
    preVote: true,
    checkQuorum: true,
    leaseDriftTicks: 1,
    prng: createPrng(id),
  };
  return { id, storage, node: new RawNode(config), appliedCommands: 0, appliedEntries: 0 };
}

/** Counts the commands in a length-prefixed batch (u16 length, then bytes), as an apply loop would. */
function countCommands(data: Uint8Array): number {
  let pos = 0;
  let n = 0;
  while (pos < data.length) {
    const len = (data[pos]! << 8) | data[pos + 1]!;
    pos += 2 + len;
    n++;
  }
  return n;
}

function encodeBatch(commands: Uint8Array[], count: number, start: number): Uint8Array {
  const out = new Uint8Array(count * (2 + COMMAND_BYTES));
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const c = commands[(start + i) % commands.length]!;
    const len = c.length;
    out[pos] = len >>> 8;
    out[pos + 1] = len & 0xff;
    pos += 2;
    // Byte loop: cheaper than TypedArray.set for 16-byte copies.
    for (let j = 0; j < len; j++) out[pos + j] = c[j]!;
    pos += len;
  }
  return out;
}

function handleReady(r: Replica, outbox: Message[]): boolean {
  if (!r.node.hasReady()) return false;
  const rd = r.node.ready();
  if (rd.snapshot !== undefined) r.storage.applySnapshot(rd.snapshot);
  r.storage.append(rd.entries);
  if (rd.hardState !== undefined) r.storage.setHardState(rd.hardState);
  for (let i = 0; i < rd.messages.length; i++) outbox.push(rd.messages[i]!);
  for (let i = 0; i < rd.committedEntries.length; i++) {
    const e = rd.committedEntries[i]!;
    if (e.type === EntryType.Normal && e.data.length > 0) {
      r.appliedCommands += countCommands(e.data);
      r.appliedEntries++;
    }
  }
  r.node.advance();
  return true;
}

/**
 * preEncoded: proposals reuse a ring of already-encoded batches (raft never mutates entry data),
 * which isolates the consensus core from the cost of building batches.
 */
function runScenario(name: string, commandsPerEntry: number, entriesPerRound: number, preEncoded: boolean) {
  const replicas = [makeReplica(1), makeReplica(2), makeReplica(3)];
  const byId = new Map(replicas.map((r) => [r.id, r]));
  let outbox: Message[] = [];
  const pump = (): boolean => {
    let did = false;
    for (const r of replicas) did = handleReady(r, outbox) || did;
    const batch = outbox;
    outbox = [];
    for (let i = 0; i < batch.length; i++) byId.get(batch[i]!.to)!.node.step(batch[i]!);
    return did || batch.length > 0;
  };
  replicas[0]!.node.campaign();
  for (let i = 0; i < 100 && pump(); i++);
  const leader = replicas[0]!;
  if (leader.node.status().role !== Role.Leader) throw new Error("bench: no leader");

  const pool: Uint8Array[] = [];
  const prng = createPrng(42);
  for (let i = 0; i < 1024; i++) {
    const c = new Uint8Array(COMMAND_BYTES);
    for (let j = 0; j < COMMAND_BYTES; j++) c[j] = prng.nextInt(256);
    pool.push(c);
  }

  const ring: Uint8Array[] = [];
  if (preEncoded) for (let i = 0; i < 512; i++) ring.push(encodeBatch(pool, commandsPerEntry, i * commandsPerEntry));

  let dropped = 0;
  let cursor = 0;
  const commandsBefore = leader.appliedCommands;
  const entriesBefore = leader.appliedEntries;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let rounds = 0;
  while (performance.now() < deadline) {
    for (let k = 0; k < 64; k++) {
      for (let i = 0; i < entriesPerRound; i++) {
        try {
          leader.node.propose(preEncoded ? ring[cursor % ring.length]! : encodeBatch(pool, commandsPerEntry, cursor));
          cursor += preEncoded ? 1 : commandsPerEntry;
        } catch {
          dropped++;
          break;
        }
      }
      pump();
      pump();
      rounds++;
      if (rounds % 256 === 0) {
        // Keep memory flat: snapshot and compact behind the slowest replica.
        const minApplied = Math.min(...replicas.map((r) => r.node.status().applied));
        for (const r of replicas) {
          const keepFrom = minApplied - 64;
          if (keepFrom > r.storage.firstIndex()) {
            r.storage.createSnapshot(keepFrom, r.node.status().config, new Uint8Array(0));
            r.storage.compact(keepFrom);
          }
        }
      }
    }
  }
  for (let i = 0; i < 100 && pump(); i++);
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMicros = cpu.user + cpu.system;
  const commands = leader.appliedCommands - commandsBefore;
  const entries = leader.appliedEntries - entriesBefore;
  for (const r of replicas) {
    if (r.appliedCommands !== leader.appliedCommands) throw new Error(`bench: replica ${r.id} diverged`);
  }
  return {
    bench: "raft-core",
    scenario: name,
    batchesPreEncoded: preEncoded,
    nodes: 3,
    commandBytes: COMMAND_BYTES,
    commandsPerEntry,
    seconds: Number(elapsedS.toFixed(3)),
    committedEntries: entries,
    committedProposals: commands,
    proposalsPerSecond: Math.round(commands / elapsedS),
    entriesPerSecond: Math.round(entries / elapsedS),
    cpuMicrosPerEntry: Number((cpuMicros / Math.max(1, entries)).toFixed(2)),
    cpuMicrosPerProposal: Number((cpuMicros / Math.max(1, commands)).toFixed(4)),
    droppedProposals: dropped,
  };
}

const all = {
  batched: () => runScenario("batched", 1000, 8, false),
  "batched-core": () => runScenario("batched-core", 1000, 8, true),
  unbatched: () => runScenario("unbatched", 1, 256, true),
};
const wanted = (process.env.BENCH_SCENARIOS ?? Object.keys(all).join(",")).split(",") as (keyof typeof all)[];
const results = wanted.map((name) => {
  const run = all[name];
  if (run === undefined) throw new Error(`unknown scenario ${name}`);
  return run();
});
for (const r of results) console.log(JSON.stringify(r));
const fmt = (n: number): string => n.toLocaleString("en-US");
console.log(
  "raft-core (3 nodes in-process): " +
    results
      .map(
        (r) =>
          `${r.scenario}: ${fmt(r.proposalsPerSecond)} proposals/s, ${fmt(r.entriesPerSecond)} entries/s, ` +
          `${r.cpuMicrosPerEntry} CPU us/entry`,
      )
      .join("; "),
);
