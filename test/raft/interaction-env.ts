/**
 * The scripted interaction environment for the Raft core, after etcd-io/raft
 * `rafttest/interaction_env*.go`: a set of RawNodes over MemoryStorage, a network that is a plain
 * list of messages, and commands that drive them one step at a time, printing what happens in a
 * stable, compact form so a golden file can say exactly what the protocol must do.
 *
 * The environment plays the driver loop of DESIGN.md faithfully: a Ready's snapshot, entries and
 * hard state are persisted before its messages are "sent" (queued in the network), then committed
 * entries are applied (conf changes through applyConfChange) together with the applied index, and
 * only then is advance() called. A crash therefore loses exactly what the RawNode held in memory
 * and had not handed out in a processed Ready.
 *
 * Commands (ids are node ids; lists are `(1,2,3)`):
 *   add-nodes N [voters=(..)] [learners=(..)] [index=I] [log=(terms..)] [term=T] [vote=V] [commit=C]
 *             [prevote=true] [checkquorum=true] [lease=true] [drift=D] [election=E] [heartbeat=H]
 *             [jitter=true] [seed=S] [timeouts=(10,12,..)] [inflight=M] [inflight-bytes=B] [max-size-per-msg=B]
 *             [max-uncommitted-bytes=B] [max-committed-size-per-ready=B] [knob=name]
 *   campaign ID | propose ID DATA | propose-conf-change ID [transition=auto|implicit|explicit] v4 l5 r2
 *   tick ID.. [n=K] | tick-heartbeat ID.. | tick-election ID..
 *   process-ready ID.. | deliver-msgs [ID..] [drop=(..)] [type=MsgApp] [from=ID] | stabilize [ID..]
 *   status ID | raft-log ID | app-state ID | lease ID | read-index ID CTX | transfer-leadership from=ID to=ID
 *   isolate ID.. | heal | compact ID INDEX | snapshot ID | crash ID | restart ID
 *   report-unreachable ID PEER | report-snapshot ID PEER ok|fail | log-level debug|none
 */
import { decodeConfChange, RawNode } from "../../src/raft/raw-node.js";
import { MemoryStorage } from "../../src/raft/memory-storage.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  ProgressState,
  ProposalDroppedError,
  Role,
  emptyConfState,
  type ConfChange,
  type ConfChangeSingle,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftTestKnobs,
  type Ready,
  type ReadState,
  type Snapshot,
} from "../../src/raft/types.js";
import { assert } from "../../src/util/assert.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { createPrng, type Prng } from "../../src/util/prng.js";
import type { CommandArg, TestBlock } from "./datadriven.js";

/** A scripted run that never goes quiet is a livelock in the core; stop it instead of hanging. */
const stabilizeRoundsMax = 200;
/** Upper bound on the network queue: a core that floods messages must show up as a failure. */
const networkMessagesMax = 10_000;
/** Upper bound on ticks per tick command. */
const ticksPerCommandMax = 1_000;
/** Upper bound on nodes in one environment. */
const nodesMax = 16;

/**
 * A "random" source that always draws `offset`: the node's randomized election timeout is then
 * always electionTicks + offset, so a script can say exactly who times out when. Offset 0 (the
 * default) gives every node the minimum timeout.
 */
function fixedJitterPrng(offset: number): Prng {
  assert(Number.isInteger(offset) && offset >= 0, "election timeout offset must be a non-negative integer");
  const prng: Prng = {
    nextU32: () => offset,
    nextInt: (bound) => {
      assert(offset < bound, `election timeout offset ${offset} is outside [0, ${bound})`);
      return offset;
    },
    nextFloat: () => 0,
    chance: () => false,
    fork: () => prng,
  };
  return prng;
}

interface NodeOptions {
  /** Config without id, storage, prng and applied; those are per node and per incarnation. */
  config: Omit<RaftConfig, "id" | "storage" | "prng" | "applied" | "debug">;
  /** Seeded random jitter (jitter=true), else the fixed timeout offset. */
  jitter: boolean;
  seed: number;
  timeoutOffset: number;
}

interface EnvNode {
  id: NodeId;
  options: NodeOptions;
  storage: MemoryStorage;
  /** Undefined while crashed. */
  rawNode: RawNode | undefined;
  /** Times this node was started; part of the prng seed so a restart draws fresh jitter. */
  incarnation: number;
  /** Durable with the state machine (DESIGN.md: applied index goes into the apply batch). */
  applied: LogIndex;
  /** The configuration as of `applied`. */
  confState: ConfState;
  /** The application: data of every applied normal entry, in order. Snapshots carry it. */
  stateMachine: string[];
}

export interface InteractionEnvOptions {
  /**
   * Test knobs forced onto every node, whatever the script says: plants a known bug so a test can
   * show that a script catches it.
   */
  forcedKnobs?: RaftTestKnobs;
}

export class InteractionEnv {
  constructor(private readonly options: InteractionEnvOptions = {}) {}

  private readonly nodes = new Map<NodeId, EnvNode>();
  private network: Message[] = [];
  private readonly isolated = new Set<NodeId>();
  // On by default, like the INFO lines in etcd's interaction output: they say why a step happened.
  private debugEnabled = true;
  private out: string[] = [];
  private indent = "";

  /** Runs one block and returns its output (each line newline-terminated). */
  handle(block: TestBlock): string {
    this.out = [];
    this.indent = "";
    const where = `line ${block.line}: ${block.commandLine}`;
    const args = new Args(block.args, where);
    switch (block.command) {
      case "add-nodes":
        this.addNodes(args);
        break;
      case "campaign":
        this.forEachId(args, (node) => this.live(node).campaign());
        break;
      case "propose":
        this.propose(args);
        break;
      case "propose-conf-change":
        this.proposeConfChange(args, block.input);
        break;
      case "tick":
        this.tick(args, args.int("n", 1));
        break;
      case "tick-heartbeat":
        this.tick(args, undefined, "heartbeat");
        break;
      case "tick-election":
        this.tick(args, undefined, "election");
        break;
      case "process-ready":
        this.forEachId(args, (node) => this.processReady(node));
        break;
      case "deliver-msgs":
        this.deliverMsgsCommand(args);
        break;
      case "stabilize":
        this.stabilize(args.ids().length > 0 ? args.ids() : [...this.nodes.keys()]);
        break;
      case "status":
        this.forEachId(args, (node) => this.printStatus(node));
        break;
      case "raft-log":
        this.forEachId(args, (node) => this.printRaftLog(node));
        break;
      case "lease":
        this.forEachId(args, (node) => this.printLease(node));
        break;
      case "app-state":
        this.forEachId(args, (node) => this.print(`applied ${node.applied}: [${node.stateMachine.join(",")}]`));
        break;
      case "read-index":
        this.readIndex(args);
        break;
      case "transfer-leadership":
        this.transferLeadership(args);
        break;
      case "isolate":
        for (const id of args.ids()) this.isolated.add(this.node(id).id);
        break;
      case "heal":
        this.isolated.clear();
        break;
      case "compact":
        this.compact(args);
        break;
      case "snapshot":
        this.forEachId(args, (node) => this.snapshot(node));
        break;
      case "crash":
        this.forEachId(args, (node) => this.crash(node));
        break;
      case "restart":
        this.forEachId(args, (node) => this.restart(node));
        break;
      case "report-unreachable":
        this.reportUnreachable(args);
        break;
      case "report-snapshot":
        this.reportSnapshot(args);
        break;
      case "log-level":
        this.logLevel(args);
        break;
      default:
        throw new Error(`${where}: unknown command ${block.command}`);
    }
    args.assertAllUsed();
    return this.out.map((line) => `${line}\n`).join("");
  }

  // ---------------------------------------------------------------------------------------------
  // Commands

  private addNodes(args: Args): void {
    const count = args.positionalInt(0);
    assert(count > 0, "add-nodes: count must be positive");
    assert(this.nodes.size + count <= nodesMax, `add-nodes: at most ${nodesMax} nodes`);
    const voters = args.intList("voters");
    const learners = args.intList("learners");
    const snapshotIndex = args.int("index", 0);
    const logTerms = args.intList("log");
    const lease = args.bool("lease", false);
    const knobName = args.string("knob", "");
    const electionTicks = args.int("election", 10);
    const options: NodeOptions = {
      config: {
        electionTicks,
        heartbeatTicks: args.int("heartbeat", 1),
        maxSizePerMsg: args.int("max-size-per-msg", 1 << 30),
        maxInflightMessages: args.int("inflight", 256),
        maxInflightBytes: args.int("inflight-bytes", 0),
        maxUncommittedEntriesBytes: args.int("max-uncommitted-bytes", 1 << 30),
        maxCommittedSizePerReady: args.int("max-committed-size-per-ready", 1 << 30),
        preVote: args.bool("prevote", false),
        // The lease is only sound with CheckQuorum (a leader that lost its quorum must step down).
        checkQuorum: args.bool("checkquorum", false) || lease,
        // leaseDriftTicks > 0 is what turns leases on (thesis 6.4.1: the lease is shorter than the
        // election timeout by the clock drift margin).
        leaseDriftTicks: lease ? args.int("drift", 2) : 0,
        testKnobs: this.options.forcedKnobs ?? knobFromName(knobName),
      },
      jitter: args.bool("jitter", false),
      seed: args.int("seed", 1),
      timeoutOffset: 0,
    };
    // timeouts=(10,12,14): the fixed election timeout of each new node, in order.
    const timeouts = args.intList("timeouts");
    assert(timeouts.length === 0 || timeouts.length === count, "add-nodes: one timeout per new node");
    assert(timeouts.length === 0 || !options.jitter, "add-nodes: timeouts= and jitter=true exclude each other");
    const hardStateVote = args.int("vote", 0);
    assert(!(snapshotIndex > 0 && logTerms.length > 0), "add-nodes: index= and log= exclude each other");
    assert(
      voters.length > 0 || (snapshotIndex === 0 && logTerms.length === 0 && learners.length === 0),
      "add-nodes: index=, log= and learners= need voters=",
    );
    // Starting from a snapshot (index=, or learners= which RawNode.bootstrap cannot express), the
    // hard state mirrors RawNode.bootstrap: term 1 (BOOTSTRAP_TERM), the snapshot committed.
    const fromSnapshot = snapshotIndex > 0 || (learners.length > 0 && logTerms.length === 0);
    const plainStart = logTerms.length === 0 && !fromSnapshot;
    assert(
      !(plainStart && (args.has("term") || args.has("vote") || args.has("commit"))),
      "add-nodes: term=, vote= and commit= need index=, learners= or log=",
    );
    const hardStateTerm = args.int("term", logTerms.length > 0 ? Math.max(...logTerms) : 1);
    const hardStateCommit = args.int("commit", fromSnapshot ? Math.max(snapshotIndex, 1) : 0);

    for (let k = 0; k < count; k++) {
      const id = this.nodes.size + 1;
      const storage = new MemoryStorage();
      if (voters.length > 0) {
        const confState: ConfState = { ...emptyConfState(), voters: [...voters], learners: [...learners] };
        if (fromSnapshot) {
          const index = Math.max(snapshotIndex, 1);
          storage.applySnapshot({ metadata: { index, term: 1, confState }, data: new Uint8Array() });
          storage.setHardState({ term: hardStateTerm, vote: hardStateVote, commit: hardStateCommit });
        } else if (logTerms.length > 0) {
          // A hand-made log (paper Figures 7 and 8): entries 1..n with the given terms.
          storage.setConfState(confState);
          storage.append(logTerms.map((term, i) => craftedEntry(term, i + 1)));
          storage.setHardState({ term: hardStateTerm, vote: hardStateVote, commit: hardStateCommit });
        } else {
          RawNode.bootstrap(storage, voters);
        }
      }
      const initial = storage.initialState();
      // A crafted log's committed prefix counts as applied: the application saw it before the
      // script starts, so it is not handed out again.
      const applied = Math.max(storage.firstIndex() - 1, logTerms.length > 0 ? initial.hardState.commit : 0);
      const stateMachine =
        applied >= storage.firstIndex()
          ? storage.entries(storage.firstIndex(), applied + 1, Number.MAX_SAFE_INTEGER).map((e) => text(e.data))
          : [];
      const node: EnvNode = {
        id,
        options: { ...options, timeoutOffset: (timeouts[k] ?? electionTicks) - electionTicks },
        storage,
        rawNode: undefined,
        incarnation: 0,
        applied,
        confState: initial.confState,
        stateMachine,
      };
      this.nodes.set(id, node);
      this.start(node);
    }
  }

  private propose(args: Args): void {
    const node = this.node(args.positionalInt(0));
    const data = args.positional(1);
    this.guardProposal(() => this.live(node).propose(utf8(data)));
  }

  private proposeConfChange(args: Args, input: string[]): void {
    const node = this.node(args.positionalInt(0));
    const transitionName = args.string("transition", "auto");
    const transition = transitionByName[transitionName];
    assert(transition !== undefined, `unknown transition ${transitionName}`);
    const tokens = [...args.positionalsFrom(1), ...input.flatMap((line) => line.trim().split(/\s+/))].filter((t) => t !== "");
    const changes = tokens.map(parseConfChangeSingle);
    this.guardProposal(() => this.live(node).proposeConfChange({ transition, changes }));
  }

  /**
   * A refused proposal (or an invalid one, which must change nothing) is an expected outcome that
   * the script shows; any other error is a failure.
   */
  private guardProposal(action: () => void, printOk = true): void {
    try {
      action();
      if (printOk) this.print("ok");
    } catch (error) {
      if (error instanceof InvalidArgumentError) {
        this.print(`invalid: ${error.message}`);
        return;
      }
      if (!(error instanceof ProposalDroppedError)) throw error;
      this.print(`dropped: ${error.reason} (leader hint ${error.leaderHint})`);
    }
  }

  private tick(args: Args, count: number | undefined, kind?: "heartbeat" | "election"): void {
    for (const id of args.ids()) {
      const node = this.node(id);
      const config = node.options.config;
      const ticks = count ?? (kind === "heartbeat" ? config.heartbeatTicks : config.electionTicks);
      assert(ticks > 0 && ticks <= ticksPerCommandMax, `tick count must be in [1, ${ticksPerCommandMax}]`);
      const rawNode = this.live(node);
      for (let t = 0; t < ticks; t++) rawNode.tick();
    }
  }

  private deliverMsgsCommand(args: Args): void {
    const drop = new Set(args.intList("drop"));
    const typeName = args.string("type", "");
    const type = typeName === "" ? undefined : messageTypeByName(typeName);
    const from = args.int("from", 0);
    const targets = args.ids();
    const matches = (m: Message): boolean => (type === undefined || m.type === type) && (from === 0 || m.from === from);
    for (const m of this.network.filter((m) => drop.has(m.to) && matches(m))) {
      this.print(`dropped: ${describeMessage(m)}`);
    }
    this.network = this.network.filter((m) => !(drop.has(m.to) && matches(m)));
    for (const id of targets) this.deliverTo(this.node(id), matches);
  }

  /** Delivers (steps) every queued message to `node` that passes `filter`, in send order. */
  private deliverTo(node: EnvNode, filter: (m: Message) => boolean = () => true): number {
    const batch = this.network.filter((m) => m.to === node.id && filter(m));
    this.network = this.network.filter((m) => !(m.to === node.id && filter(m)));
    for (const m of batch) {
      if (this.crossesPartition(m, m.from)) {
        this.print(`dropped: ${describeMessage(m)} (isolated)`);
        continue;
      }
      if (node.rawNode === undefined) {
        this.print(`dropped: ${describeMessage(m)} (node ${node.id} is down)`);
        continue;
      }
      this.print(describeMessage(m));
      this.withIndent(() => node.rawNode?.step(m));
    }
    return batch.length;
  }

  private stabilize(ids: NodeId[]): void {
    const nodes = ids.map((id) => this.node(id));
    for (let round = 0; ; round++) {
      assert(round < stabilizeRoundsMax, `stabilize did not go quiet within ${stabilizeRoundsMax} rounds`);
      let quiet = true;
      for (const node of nodes) {
        const rawNode = node.rawNode;
        if (rawNode === undefined) continue;
        // hasReady() may do work (and log it) before the header: show that under the header.
        let ready = false;
        const said = this.capture(() => (ready = rawNode.hasReady()));
        assert(ready || said.length === 0, `node ${node.id} logged without producing a Ready`);
        if (!ready) continue;
        quiet = false;
        this.print(`> ${node.id} handling Ready`);
        this.withIndent(() => {
          for (const line of said) this.print(line);
          this.processReady(node);
        });
      }
      for (const node of nodes) {
        if (!this.network.some((m) => m.to === node.id)) continue;
        quiet = false;
        this.print(`> ${node.id} receiving messages`);
        this.withIndent(() => this.deliverTo(node));
      }
      if (quiet) return;
    }
  }

  /** One iteration of the driver loop for one node (types.ts, Ready: the order of handling). */
  private processReady(node: EnvNode): void {
    const rawNode = this.live(node);
    if (!rawNode.hasReady()) {
      this.print("<empty Ready>");
      return;
    }
    const ready = rawNode.ready();
    // A message sent across a partition is lost, even if the partition heals before delivery.
    const lost = (m: Message): boolean => this.crossesPartition(m, node.id);
    for (const line of describeReady(ready, (m) => (lost(m) ? " (dropped: isolated)" : ""))) {
      this.print(line);
    }

    if (ready.snapshot !== undefined) {
      node.storage.applySnapshot(ready.snapshot);
      node.stateMachine = decodeStateMachine(ready.snapshot.data);
      node.applied = ready.snapshot.metadata.index;
      node.confState = ready.snapshot.metadata.confState;
    }
    if (ready.entries.length > 0) node.storage.append(ready.entries);
    if (ready.hardState !== undefined) node.storage.setHardState(ready.hardState);

    for (const m of ready.messages) {
      assert(m.to !== node.id, `node ${node.id} sent a message to itself: ${describeMessage(m)}`);
      // As PeerTransport.send: a message leaves a node with `from` naming that node, no other.
      assert(m.from === node.id, `node ${node.id} sent a message from another node: ${describeMessage(m)}`);
      if (lost(m)) continue;
      this.network.push(m);
    }
    assert(this.network.length <= networkMessagesMax, "network queue overflow: the core floods messages");

    for (const entry of ready.committedEntries) {
      // Invariant: committed entries arrive exactly once, in index order, after the snapshot.
      assert(entry.index === node.applied + 1, `node ${node.id} applies ${entry.index} after ${node.applied}`);
      if (entry.type === EntryType.ConfChange) {
        const confState = rawNode.applyConfChange(decodeConfChange(entry.data));
        node.storage.setConfState(confState);
        node.confState = confState;
        this.print(`ConfState after ${entry.term}/${entry.index}: ${describeConfState(confState)}`);
      } else if (entry.data.length > 0) {
        node.stateMachine.push(text(entry.data));
      }
      node.applied = entry.index;
    }
    rawNode.advance();
  }

  private printStatus(node: EnvNode): void {
    const status = this.live(node).status();
    this.print(
      `Term:${status.term} Vote:${status.vote} Commit:${status.commit} Applied:${status.applied} ` +
        `LastIndex:${status.lastIndex} State:${roleName(status.role)} Lead:${status.leader}`,
    );
    this.print(`Config: ${describeConfState(status.config)}`);
    if (status.leadTransferee !== 0) this.print(`LeadTransferee:${status.leadTransferee}`);
    if (status.role !== Role.Leader) return;
    this.print(`Lease: ${status.leaseValid ? `valid, remaining ticks: ${status.leaseRemainingTicks}` : "not valid"}`);
    this.print("Progress:");
    for (const [id, p] of [...status.progress.entries()].sort((a, b) => a[0] - b[0])) {
      let line = `${id}: State${ProgressState[p.state]} match=${p.match} next=${p.next}`;
      if (p.isLearner) line += " learner";
      if (p.inflightMessages > 0) line += ` inflight=${p.inflightMessages}`;
      if (p.inflightBytes > 0) line += ` inflightBytes=${p.inflightBytes}`;
      if (p.pendingSnapshot > 0) line += ` pendingSnapshot=${p.pendingSnapshot}`;
      if (!p.recentActive && id !== node.id) line += " inactive";
      this.print(line);
    }
  }

  private printRaftLog(node: EnvNode): void {
    const first = node.storage.firstIndex();
    const last = node.storage.lastIndex();
    if (last < first) {
      this.print(`log is empty: first index=${first}, last index=${last}`);
      return;
    }
    for (const entry of node.storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) {
      this.print(describeEntry(entry));
    }
  }

  private printLease(node: EnvNode): void {
    const rawNode = this.live(node);
    const status = rawNode.status();
    const valid = rawNode.leaseValid();
    // The two views of the lease must agree.
    assert(valid === status.leaseValid, "leaseValid() disagrees with status().leaseValid");
    this.print(valid ? `lease valid, remaining ticks: ${status.leaseRemainingTicks}` : "lease not valid");
  }

  private readIndex(args: Args): void {
    const node = this.node(args.positionalInt(0));
    const context = utf8(args.positional(1));
    this.guardProposal(() => this.live(node).readIndex(context), false);
  }

  private transferLeadership(args: Args): void {
    const from = this.node(args.int("from", 0));
    const to = this.node(args.int("to", 0));
    this.live(from).transferLeader(to.id);
  }

  private compact(args: Args): void {
    const node = this.node(args.positionalInt(0));
    const index = args.positionalInt(1);
    assert(index <= node.applied, "compact: only applied entries may be compacted");
    node.storage.compact(index);
    this.printRaftLog(node);
  }

  /** The application takes a snapshot of its state at `applied` (etcd: CreateSnapshot). */
  private snapshot(node: EnvNode): void {
    const snap = node.storage.createSnapshot(node.applied, node.confState, encodeStateMachine(node.stateMachine));
    this.print(describeSnapshot(snap));
  }

  /** The process dies: its in-memory state is gone and so are messages on the wire to it. */
  private crash(node: EnvNode): void {
    assert(node.rawNode !== undefined, `node ${node.id} is already down`);
    node.rawNode = undefined;
    this.dropMessagesTo(node, "crashed");
  }

  private restart(node: EnvNode): void {
    assert(node.rawNode === undefined, `node ${node.id} is running; crash it first`);
    // Whatever was sent while it was down never reached it.
    this.dropMessagesTo(node, "was down");
    this.start(node);
    const status = this.live(node).status();
    this.print(
      `restarted ${node.id}: Term:${status.term} Vote:${status.vote} Commit:${status.commit} ` +
        `Applied:${status.applied} LastIndex:${status.lastIndex}`,
    );
  }

  private crossesPartition(m: Message, sender: NodeId): boolean {
    return this.isolated.has(sender) || this.isolated.has(m.to);
  }

  private dropMessagesTo(node: EnvNode, why: string): void {
    for (const m of this.network.filter((m) => m.to === node.id)) {
      this.print(`dropped: ${describeMessage(m)} (${node.id} ${why})`);
    }
    this.network = this.network.filter((m) => m.to !== node.id);
  }

  private start(node: EnvNode): void {
    node.incarnation++;
    const prng = node.options.jitter
      ? createPrng(node.options.seed * 1_000_003 + node.id * 1_009 + node.incarnation)
      : fixedJitterPrng(node.options.timeoutOffset);
    node.rawNode = new RawNode({
      ...node.options.config,
      id: node.id,
      storage: node.storage,
      prng,
      applied: node.applied,
      debug: (line) => {
        if (this.debugEnabled) this.print(line);
      },
    });
  }

  private reportUnreachable(args: Args): void {
    const node = this.node(args.positionalInt(0));
    this.live(node).reportUnreachable(this.node(args.positionalInt(1)).id);
  }

  private reportSnapshot(args: Args): void {
    const node = this.node(args.positionalInt(0));
    const peer = this.node(args.positionalInt(1));
    const outcome = args.positional(2);
    assert(outcome === "ok" || outcome === "fail", "report-snapshot: outcome is ok or fail");
    this.live(node).reportSnapshot(peer.id, outcome === "ok");
  }

  private logLevel(args: Args): void {
    const level = args.positional(0);
    assert(level === "debug" || level === "none", "log-level: debug or none");
    this.debugEnabled = level === "debug";
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private forEachId(args: Args, action: (node: EnvNode) => void): void {
    const ids = args.ids();
    assert(ids.length > 0, "command needs at least one node id");
    for (const id of ids) {
      const node = this.node(id);
      if (ids.length > 1) {
        // A header per node, left out when the node had nothing to say.
        const headerAt = this.out.length;
        this.withIndent(() => action(node));
        if (this.out.length > headerAt) this.out.splice(headerAt, 0, `${this.indent}> ${id}:`);
      } else {
        action(node);
      }
    }
  }

  private node(id: NodeId): EnvNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  private live(node: EnvNode): RawNode {
    assert(node.rawNode !== undefined, `node ${node.id} is down`);
    return node.rawNode;
  }

  private print(line: string): void {
    for (const part of line.split("\n")) this.out.push(`${this.indent}${part}`);
  }

  /** Runs `action` and returns what it printed (unindented) instead of printing it. */
  private capture(action: () => void): string[] {
    const savedOut = this.out;
    const savedIndent = this.indent;
    this.out = [];
    this.indent = "";
    try {
      action();
      return this.out;
    } finally {
      this.out = savedOut;
      this.indent = savedIndent;
    }
  }

  private withIndent(action: () => void): void {
    const saved = this.indent;
    this.indent += "  ";
    try {
      action();
    } finally {
      this.indent = saved;
    }
  }
}

// -----------------------------------------------------------------------------------------------
// Arguments

class Args {
  private readonly used = new Set<number>();

  constructor(
    private readonly args: CommandArg[],
    private readonly where: string,
  ) {}

  /** Positional (bare) arguments, in order. */
  private positionals(): { value: string; index: number }[] {
    return this.args.flatMap((arg, index) => (arg.values.length === 0 ? [{ value: arg.key, index }] : []));
  }

  positional(n: number): string {
    const p = this.positionals()[n];
    assert(p !== undefined, `${this.where}: missing positional argument ${n + 1}`);
    this.used.add(p.index);
    return p.value;
  }

  positionalInt(n: number): number {
    return toInt(this.positional(n), this.where);
  }

  positionalsFrom(n: number): string[] {
    return this.positionals()
      .slice(n)
      .map((p) => {
        this.used.add(p.index);
        return p.value;
      });
  }

  /** All positional arguments as node ids. */
  ids(): NodeId[] {
    return this.positionalsFrom(0).map((v) => toInt(v, this.where));
  }

  has(key: string): boolean {
    return this.args.some((arg) => arg.key === key && arg.values.length > 0);
  }

  private keyed(key: string): string[] | undefined {
    const index = this.args.findIndex((arg) => arg.key === key && arg.values.length > 0);
    if (index < 0) return undefined;
    this.used.add(index);
    return (this.args[index] as CommandArg).values;
  }

  string(key: string, fallback: string): string {
    const values = this.keyed(key);
    if (values === undefined) return fallback;
    assert(values.length === 1, `${this.where}: ${key} takes one value`);
    return values[0] as string;
  }

  int(key: string, fallback: number): number {
    const value = this.string(key, "");
    return value === "" ? fallback : toInt(value, this.where);
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.string(key, "");
    if (value === "") return fallback;
    assert(value === "true" || value === "false", `${this.where}: ${key} is true or false`);
    return value === "true";
  }

  intList(key: string): number[] {
    return (this.keyed(key) ?? []).map((v) => toInt(v, this.where));
  }

  /** A misspelled argument must fail the script rather than be silently ignored. */
  assertAllUsed(): void {
    this.args.forEach((arg, index) => {
      assert(this.used.has(index), `${this.where}: unused argument ${arg.key}`);
    });
  }
}

function toInt(value: string, where: string): number {
  assert(/^-?\d+$/.test(value), `${where}: ${value} is not an integer`);
  return Number(value);
}

// -----------------------------------------------------------------------------------------------
// Formatting: stable, compact, close to etcd's raft.DescribeMessage / DescribeReady.

const transitionByName: Record<string, ConfChangeTransition> = {
  auto: ConfChangeTransition.Auto,
  implicit: ConfChangeTransition.JointImplicit,
  explicit: ConfChangeTransition.JointExplicit,
};

function knobFromName(name: string): RaftTestKnobs | undefined {
  switch (name) {
    case "":
      return undefined;
    case "commit-previous-term-entries":
      return { commitPreviousTermEntries: true };
    case "forget-vote":
      return { forgetVote: true };
    case "lease-without-vote-restriction":
      return { leaseWithoutVoteRestriction: true };
    default:
      throw new Error(`unknown knob ${name}`);
  }
}

function parseConfChangeSingle(token: string): ConfChangeSingle {
  const match = /^([vlr])(\d+)$/.exec(token);
  assert(match !== null, `conf change ${token}: expected v<id>, l<id> or r<id>`);
  const type = { v: ConfChangeType.AddNode, l: ConfChangeType.AddLearnerNode, r: ConfChangeType.RemoveNode }[match[1] as "v" | "l" | "r"];
  return { type, nodeId: Number(match[2]) };
}

function messageTypeByName(name: string): MessageType {
  const key = name.startsWith("Msg") ? name.slice(3) : name;
  const type = (MessageType as unknown as Record<string, MessageType | undefined>)[key];
  assert(typeof type === "number", `unknown message type ${name}`);
  return type;
}

function roleName(role: Role): string {
  return `State${Role[role]}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} Msg${MessageType[m.type]} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(describeEntry).join(", ")}]`;
  if (m.snapshot !== undefined) s += ` Snapshot: ${describeSnapshot(m.snapshot)}`;
  if (m.context !== undefined && m.context.length > 0) s += ` Context:${describeBytes(m.context)}`;
  return s;
}

export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) return `${e.term}/${e.index} EntryConfChange ${describeConfChange(decodeConfChange(e.data))}`;
  return `${e.term}/${e.index} EntryNormal ${describeBytes(e.data)}`;
}

function describeConfChange(cc: ConfChange): string {
  const letter = { [ConfChangeType.AddNode]: "v", [ConfChangeType.AddLearnerNode]: "l", [ConfChangeType.RemoveNode]: "r" };
  const parts = cc.changes.map((c) => `${letter[c.type]}${c.nodeId}`);
  if (parts.length === 0) parts.push("leave-joint");
  if (cc.transition === ConfChangeTransition.JointImplicit) parts.unshift("transition=implicit");
  if (cc.transition === ConfChangeTransition.JointExplicit) parts.unshift("transition=explicit");
  return parts.join(" ");
}

export function describeConfState(cs: ConfState): string {
  let s = `Voters:[${cs.voters.join(" ")}]`;
  if (cs.votersOutgoing.length > 0) s += `&&[${cs.votersOutgoing.join(" ")}]`;
  s += ` Learners:[${cs.learners.join(" ")}]`;
  if (cs.learnersNext.length > 0) s += ` LearnersNext:[${cs.learnersNext.join(" ")}]`;
  if (cs.autoLeave) s += " AutoLeave";
  return s;
}

function describeSnapshot(snap: Snapshot): string {
  const m = snap.metadata;
  return `Index:${m.index} Term:${m.term} ConfState:${describeConfState(m.confState)} Data:${describeBytes(snap.data)}`;
}

function describeHardState(hs: HardState): string {
  return `HardState Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

function describeReadState(rs: ReadState): string {
  return `Index:${rs.index} Context:${describeBytes(rs.context)}`;
}

/** `annotate` may append a note to each message line (the environment marks dropped ones). */
export function describeReady(rd: Ready, annotate: (m: Message) => string = () => ""): string[] {
  const lines = [`Ready MustSync=${rd.mustSync}:`];
  if (rd.softState !== undefined) lines.push(`Lead:${rd.softState.leader} State:${roleName(rd.softState.role)}`);
  if (rd.hardState !== undefined) lines.push(describeHardState(rd.hardState));
  if (rd.snapshot !== undefined) lines.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  const section = (title: string, items: string[]): void => {
    if (items.length === 0) return;
    lines.push(`${title}:`);
    lines.push(...items);
  };
  section("Entries", rd.entries.map(describeEntry));
  section("CommittedEntries", rd.committedEntries.map(describeEntry));
  section(
    "Messages",
    rd.messages.map((m) => describeMessage(m) + annotate(m)),
  );
  section("ReadStates", rd.readStates.map(describeReadState));
  return lines;
}

/** Printable ASCII as a quoted string, anything else as hex, so output stays one stable line. */
function describeBytes(bytes: Uint8Array): string {
  if (bytes.every((b) => b >= 0x20 && b < 0x7f)) return JSON.stringify(text(bytes));
  return `0x${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function craftedEntry(term: number, index: LogIndex): Entry {
  // One byte of data, so a crafted entry is told apart from a leader's empty no-op.
  return { term, index, type: EntryType.Normal, data: utf8("x") };
}

function encodeStateMachine(applied: string[]): Uint8Array {
  return utf8(applied.join(","));
}

function decodeStateMachine(data: Uint8Array): string[] {
  const s = text(data);
  return s === "" ? [] : s.split(",");
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
