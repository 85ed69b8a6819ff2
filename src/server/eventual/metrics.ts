/**
 * The eventual buffer's Prometheus series, on the node's own registry (src/server/ops/metrics.ts):
 * gauges read at scrape time from the buffer, counters bumped by the service and the flusher.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { EventualBuffer } from "./buffer.js";

export interface EventualMetrics {
  adds: Counter;
  flushes: Counter;
  flushFailures: Counter<"outcome">;
}

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
    flushes: new Counter({ name: "tally_eventual_flushes_total", help: "Eventual flushes applied by their shard", registers }),
    flushFailures: new Counter({
      name: "tally_eventual_flush_failures_total",
      help: "Eventual flush answers other than applied: retried (same seq), requeued (nothing applied), dropped_refused, dropped_unknown",
      labelNames: ["outcome"],
      registers,
    }),
  };
}
