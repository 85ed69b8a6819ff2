/**
 * The eventual buffer's Prometheus series, on the node's own registry (src/server/ops/metrics.ts):
 * gauges read at scrape time from the buffer, counters bumped by the service and the flusher.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { EventualBuffer } from "./buffer.js";

export interface EventualMetrics {
  adds: Counter;
  /** EventualAdd requests refused before buffering because a shard's leader was silent (the client tries another node). */
  refusedLeaderSilent: Counter;
  flushes: Counter;
  flushFailures: Counter<"outcome">;
  /** EventualAdd from the request's arrival to its group being durable (server side). */
  addSeconds: Histogram;
  /** One group's synchronized write (O_DSYNC, or write + fdatasync), and the records it carried. */
  syncSeconds: Histogram;
  /** A flush: cut (its record made durable), send (the shard's answer), from the oldest add it carries to that answer (lag). */
  flushSeconds: Histogram<"phase">;
}

/** 0.1 ms .. 10 s: a group sync on a quiet disk is ~1 ms, a flush one Raft commit. */
const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Registers the series on `registry` (none: counters that go nowhere, for tests). */
export function eventualMetrics(buffer: EventualBuffer, registry: Registry | undefined, nowMs: () => number): EventualMetrics {
  const registers = registry === undefined ? [] : [registry];
  new Gauge({
    name: "tally_eventual_buffer_adds",
    help: "Eventual add operations accepted by this node and not yet applied by a flush",
    registers,
    collect() {
      this.set(buffer.state.unflushedAdds());
    },
  });
  new Gauge({
    name: "tally_eventual_buffer_bytes",
    help: "Size of this node's eventual buffer file",
    registers,
    collect() {
      this.set(buffer.sizeBytes);
    },
  });
  new Gauge({
    name: "tally_eventual_flush_lag_seconds",
    help: "Age of the oldest eventual add on this node not yet applied by its shard (0: none)",
    registers,
    collect() {
      const oldest = buffer.state.oldestMs();
      this.set(oldest === undefined ? 0 : Math.max(0, nowMs() - oldest) / 1000);
    },
  });
  return {
    adds: new Counter({ name: "tally_eventual_adds_total", help: "Eventual add operations accepted (durable) by this node", registers }),
    refusedLeaderSilent: new Counter({
      name: "tally_eventual_refused_leader_silent_total",
      help: "EventualAdd requests refused (UNAVAILABLE, nothing buffered) because this node had not heard from the leader of one of their shards for eventual.refuseAfterLeaderSilenceMs",
      registers,
    }),
    flushes: new Counter({ name: "tally_eventual_flushes_total", help: "Eventual flushes applied by their shard", registers }),
    flushFailures: new Counter({
      name: "tally_eventual_flush_failures_total",
      help: "Eventual flush answers other than applied: retried (same seq), requeued (nothing applied), dropped_refused, dropped_unknown, expired_checked (session expired: the marker decided)",
      labelNames: ["outcome"],
      registers,
    }),
    addSeconds: new Histogram({
      name: "tally_eventual_add_duration_seconds",
      help: "EventualAdd on this node, from the request's arrival to its buffer group being durable",
      buckets: BUCKETS,
      registers,
    }),
    syncSeconds: new Histogram({
      name: "tally_eventual_sync_duration_seconds",
      help: "One eventual buffer group: its synchronized write",
      buckets: BUCKETS,
      registers,
    }),
    flushSeconds: new Histogram({
      name: "tally_eventual_flush_duration_seconds",
      help: "Eventual flushes by phase: cut (made durable), send (until the shard answered), lag (oldest add carried -> applied)",
      labelNames: ["phase"],
      buckets: BUCKETS,
      registers,
    }),
  };
}
