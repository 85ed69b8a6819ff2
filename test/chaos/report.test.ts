/** The HTML report shows the verdict, shades every fault window and plots every operation. */
import { describe, expect, it } from "vitest";
import { checkHistory, type FaultWindow, type HistoryOp } from "./checker.js";
import { renderHtmlReport } from "./report.js";

describe("renderHtmlReport", () => {
  it("renders verdict, fault windows and points", () => {
    const history: HistoryOp[] = [
      { id: 0, worker: 0, key: "a", kind: "add", delta: 2, status: "ok", invokedAt: 0, completedAt: 5, value: "2" },
      { id: 1, worker: 1, key: "a", kind: "read", status: "ok", invokedAt: 10, completedAt: 12, value: "1" },
      { id: 2, worker: -1, key: "a", kind: "final-read", status: "ok", invokedAt: 100, completedAt: 101, value: "2" },
    ];
    const faults: FaultWindow[] = [{ name: "pause", startMs: 4, endMs: 20, detail: "SIGSTOP <1>" }];
    const result = checkHistory(history, faults);
    const html = renderHtmlReport(
      { seed: 7, result, history, faults },
      { nodes: 3, timeS: 1, rate: 1, keys: 1, readRatio: 0.5, nemeses: ["pause"], seed: 7 },
    );
    expect(result.valid).toBe(false);
    expect(html).toContain(">INVALID</h1>");
    expect(html).toContain("<title>pause: SIGSTOP &lt;1&gt;</title>");
    expect(html.match(/<circle /g)).toHaveLength(1);
    expect(html).toContain("not linearizable");
  });
});
