/**
 * Fault profiles: how hard the nemesis hits and with what. Each seed picks its own network
 * weather and fault mix (configForSeed in simulator.ts); the planted-bug tests pick the profile
 * that makes their bug reachable.
 */
import type { NetworkOptions } from "./network.js";

export type FaultKind =
  | "partition"
  | "isolate-leader"
  | "one-way-cut"
  | "heal"
  | "crash"
  | "crash-leader"
  /** Freeze a node (GC pause, SIGSTOP): nothing runs until it resumes with a burst of owed ticks. */
  | "pause"
  | "transfer-leader"
  /** An extra membership change (runs with membership on also get a steady stream of them). */
  | "membership"
  /** Cut leader -> follower one way; when that follower's election timer is about to fire, isolate the leader. */
  | "lease-trap"
  /** Crash the leader, then make two followers campaign at the same instant once its lease has run out. */
  | "election-storm";

export interface FaultProfile {
  name: string;
  nemesisIntervalMs: [number, number];
  weights: Partial<Record<FaultKind, number>>;
  /** Chance that a node crashes right after it granted a vote (persisted, sent). */
  crashAfterVoteRate: number;
  /** Chance that a newly elected leader crashes within crashNewLeaderMs. */
  crashNewLeaderRate: number;
  crashNewLeaderMs: [number, number];
  /** Chance that a newly elected leader is isolated at once (its first appends stay its own). */
  isolateNewLeaderRate: number;
  /** Chance that a new leader is isolated right after its first commit (before followers hear of it). */
  isolateAfterCommitRate: number;
  restartDelayMs: [number, number];
  /** How long a "pause" freezes its node. */
  pauseMs: [number, number];
  /**
   * Chance that a crash keeps the written-but-unsynced Ready anyway (the process died, the OS
   * flushed its page cache): durable without its messages ever being sent.
   */
  unsyncedSurvivesRate: number;
  healAfterMs: [number, number];
  network: NetworkOptions;
  fsyncDelayMs: [number, number];
  /** Chance that an fsync stalls for tens to hundreds of milliseconds. */
  fsyncStallRate: number;
  /** Bytes per App message; tiny values split every replication into one-entry messages. */
  maxSizePerMsg: number;
}

const baseNetwork: NetworkOptions = {
  delayMinMs: 0.5,
  delayMaxMs: 6,
  dropRate: 0.01,
  duplicateRate: 0.01,
  spikeRate: 0.01,
  spikeMaxMs: 60,
};

export const profiles = {
  /** Everything at moderate rates: the default mix. */
  mixed: {
    name: "mixed",
    nemesisIntervalMs: [40, 400],
    weights: {
      partition: 3,
      "isolate-leader": 3,
      "one-way-cut": 2,
      heal: 3,
      crash: 3,
      "crash-leader": 3,
      pause: 2,
      "transfer-leader": 2,
      "lease-trap": 1,
      "election-storm": 1,
    },
    crashAfterVoteRate: 0.05,
    crashNewLeaderRate: 0.05,
    crashNewLeaderMs: [0, 60],
    isolateNewLeaderRate: 0.03,
    isolateAfterCommitRate: 0.05,
    restartDelayMs: [5, 400],
    pauseMs: [20, 400],
    unsyncedSurvivesRate: 0.3,
    healAfterMs: [50, 600],
    network: baseNetwork,
    fsyncDelayMs: [0.2, 4],
    fsyncStallRate: 0.003,
    maxSizePerMsg: 1024,
  },
  /** Lossy, jittery network, few crashes: replication, flow control and retries. */
  stormy: {
    name: "stormy",
    nemesisIntervalMs: [50, 500],
    weights: { partition: 3, "one-way-cut": 3, heal: 2, "isolate-leader": 2, crash: 1, pause: 1, "transfer-leader": 1 },
    crashAfterVoteRate: 0.02,
    crashNewLeaderRate: 0.02,
    crashNewLeaderMs: [0, 100],
    isolateNewLeaderRate: 0.05,
    isolateAfterCommitRate: 0.05,
    restartDelayMs: [5, 300],
    pauseMs: [20, 400],
    unsyncedSurvivesRate: 0.3,
    healAfterMs: [50, 800],
    network: { delayMinMs: 0.5, delayMaxMs: 15, dropRate: 0.08, duplicateRate: 0.05, spikeRate: 0.05, spikeMaxMs: 120 },
    fsyncDelayMs: [0.2, 8],
    fsyncStallRate: 0.003,
    maxSizePerMsg: 256,
  },
  /** Crash-heavy: restarts from the synced image, lost unsynced writes, snapshots after restarts. */
  crashy: {
    name: "crashy",
    nemesisIntervalMs: [20, 250],
    weights: { crash: 5, "crash-leader": 4, pause: 2, heal: 1, partition: 1, "election-storm": 2 },
    crashAfterVoteRate: 0.15,
    crashNewLeaderRate: 0.15,
    crashNewLeaderMs: [0, 30],
    isolateNewLeaderRate: 0.05,
    isolateAfterCommitRate: 0.1,
    restartDelayMs: [1, 200],
    pauseMs: [20, 400],
    unsyncedSurvivesRate: 0.3,
    healAfterMs: [50, 400],
    network: baseNetwork,
    fsyncDelayMs: [0.5, 10],
    fsyncStallRate: 0.003,
    maxSizePerMsg: 512,
  },
  /**
   * Paper Figure 8 conditions: new leaders are cut off right after election (their first
   * entries stay theirs alone, so logs diverge) and right after their first commit (so followers
   * hold an old-term entry without the new leader's no-op); App messages carry one entry each.
   * For commitPreviousTermEntries.
   */
  figure8: {
    name: "figure8",
    nemesisIntervalMs: [80, 300],
    weights: { "crash-leader": 3, crash: 1 },
    crashAfterVoteRate: 0.02,
    crashNewLeaderRate: 0.05,
    crashNewLeaderMs: [2, 25],
    isolateNewLeaderRate: 0.6,
    isolateAfterCommitRate: 0.6,
    restartDelayMs: [1, 80],
    pauseMs: [20, 400],
    unsyncedSurvivesRate: 0.3,
    healAfterMs: [20, 250],
    network: { delayMinMs: 0.5, delayMaxMs: 6, dropRate: 0.02, duplicateRate: 0.02, spikeRate: 0.02, spikeMaxMs: 40 },
    fsyncDelayMs: [0.2, 3],
    fsyncStallRate: 0.003,
    maxSizePerMsg: 1,
  },
  /** Dueling candidates and voters that crash right after voting; for forgetVote. */
  elections: {
    name: "elections",
    nemesisIntervalMs: [30, 200],
    weights: { "election-storm": 5, "crash-leader": 2, "isolate-leader": 1, heal: 1 },
    crashAfterVoteRate: 0.6,
    crashNewLeaderRate: 0.1,
    crashNewLeaderMs: [0, 40],
    isolateNewLeaderRate: 0,
    isolateAfterCommitRate: 0,
    restartDelayMs: [0.5, 6],
    pauseMs: [20, 400],
    unsyncedSurvivesRate: 0.3,
    healAfterMs: [30, 200],
    network: { delayMinMs: 0.5, delayMaxMs: 12, dropRate: 0.01, duplicateRate: 0.1, spikeRate: 0.05, spikeMaxMs: 30 },
    fsyncDelayMs: [0.1, 1],
    fsyncStallRate: 0.003,
    maxSizePerMsg: 1024,
  },
  /** A leader cut off while it still holds a lease, a new leader elected beside it; for leases. */
  leases: {
    name: "leases",
    nemesisIntervalMs: [200, 500],
    weights: { "lease-trap": 6, heal: 1, "transfer-leader": 1, pause: 1 },
    crashAfterVoteRate: 0,
    crashNewLeaderRate: 0,
    crashNewLeaderMs: [0, 0],
    isolateNewLeaderRate: 0,
    isolateAfterCommitRate: 0,
    restartDelayMs: [5, 100],
    pauseMs: [20, 400],
    unsyncedSurvivesRate: 0.3,
    healAfterMs: [150, 400],
    network: { delayMinMs: 0.3, delayMaxMs: 2, dropRate: 0.002, duplicateRate: 0.002, spikeRate: 0, spikeMaxMs: 0 },
    fsyncDelayMs: [0.1, 0.5],
    fsyncStallRate: 0.003,
    maxSizePerMsg: 1024,
  },
  /**
   * Long process pauses (SIGSTOP, a stalled VM) while linearizable reads are in flight: a paused
   * leader wakes up deposed, a paused follower wakes up to stale messages naming an old leader,
   * and ReadIndex requests queued on either side meet a node whose idea of the leader changed
   * meanwhile. Pauses run from a few heartbeats to 50 election timeouts; partitions and one-way
   * cuts keep some nodes on a stale leader for longer.
   */
  pauses: {
    name: "pauses",
    nemesisIntervalMs: [100, 600],
    weights: { pause: 6, "one-way-cut": 1, partition: 1, heal: 2, "transfer-leader": 1 },
    crashAfterVoteRate: 0,
    crashNewLeaderRate: 0,
    crashNewLeaderMs: [0, 0],
    isolateNewLeaderRate: 0,
    isolateAfterCommitRate: 0,
    restartDelayMs: [5, 100],
    pauseMs: [50, 5_000],
    unsyncedSurvivesRate: 0.3,
    healAfterMs: [50, 600],
    network: baseNetwork,
    fsyncDelayMs: [0.2, 4],
    fsyncStallRate: 0.003,
    maxSizePerMsg: 1024,
  },
} satisfies Record<string, FaultProfile>;

export type ProfileName = keyof typeof profiles;
export const profileNames = Object.keys(profiles) as ProfileName[];
