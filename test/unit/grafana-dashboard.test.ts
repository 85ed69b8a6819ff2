/**
 * deploy/grafana/tally-dashboard.json charts only what tallyd exports: every metric name in its
 * queries (panels and template variables) is registered by src/server/ops/metrics.ts (tally_*, and
 * prom-client's process_* / nodejs_* defaults), so a renamed or removed metric fails here instead
 * of leaving an empty panel.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { NodeMetrics, type NodeSample } from "../../src/server/ops/metrics.js";

const root = resolve(import.meta.dirname, "..", "..");
const dashboard = JSON.parse(readFileSync(join(root, "deploy", "grafana", "tally-dashboard.json"), "utf8")) as {
  title: string;
  uid: string;
  panels: Array<{
    id: number;
    type: string;
    title: string;
    gridPos: { x: number; y: number; w: number; h: number };
    targets?: Array<{ expr: string; refId: string }>;
  }>;
  templating: { list: Array<{ name: string; query: string | { query: string } }> };
};

const sample: NodeSample = {
  groups: [
    {
      group: "1",
      term: 2,
      isLeader: true,
      leader: 1,
      commit: 5,
      applied: 5,
      lastIndex: 5,
      leaseValid: true,
      pendingProposals: 0,
      pendingReads: 0,
    },
  ],
  counters: {
    loopIterations: 1,
    entriesWritten: 1,
    entriesApplied: 1,
    leaderChanges: 1,
    snapshotsTaken: 0,
    snapshotsBuilt: 0,
    snapshotsInstalled: 0,
  },
  peerQueues: new Map([[2, 0]]),
  peerMessagesDropped: 0,
  peerFramesSent: 0,
  peerMessagesSent: 0,
  peerUnauthenticated: 0,
  inboundDropped: 0,
  appliedBytesPerIterationMax: 0,
  ready: true,
};

function expressions(): string[] {
  const fromPanels = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
  const fromVariables = dashboard.templating.list.map((variable) =>
    typeof variable.query === "string" ? variable.query : variable.query.query,
  );
  return [...fromPanels, ...fromVariables];
}

/** Metric names in a PromQL expression, histogram series (_bucket, _sum, _count) by their histogram's name. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:tally|process|nodejs)_[a-z0-9_]+)\b/g)].map((match) => match[1]!.replace(/_(bucket|sum|count)$/, ""));
}

describe("the Grafana dashboard", () => {
  it("uses only metrics that src/server/ops/metrics.ts registers, and every tally_* metric that matters for a cluster view", async () => {
    const metrics = new NodeMetrics(() => sample, { nodeId: 1 });
    const registered = new Set((await metrics.registry.getMetricsAsJSON()).map((metric) => metric.name));
    const used = new Set(expressions().flatMap(metricNames));
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((name) => !registered.has(name))).toEqual([]);
    // The health signals an operator looks at first are all charted.
    for (const name of [
      "tally_node_ready",
      "tally_raft_is_leader",
      "tally_requests_total",
      "tally_request_duration_seconds",
      "tally_raft_apply_lag_entries",
      "tally_storage_write_seconds",
      "tally_build_info",
    ]) {
      expect(used.has(name), name).toBe(true);
    }
  });

  it("is an importable dashboard: a title and uid, unique panel ids, a query in every chart, panels inside the 24-column grid", () => {
    expect(dashboard.title).toBe("tally");
    expect(dashboard.uid).toMatch(/^[a-z0-9-]+$/);
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
      if (panel.type !== "row") expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.expr, panel.title).not.toBe("");
    }
  });
});
