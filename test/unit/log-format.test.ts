/**
 * tallyd's log format (src/server/ops/log-format.ts): pretty on a terminal, JSON otherwise,
 * TALLY_LOG_FORMAT forcing either; the pretty stream writes each line at once (no worker thread).
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { chooseLogFormat, prettyDestination } from "../../src/server/ops/log-format.js";

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("log format", () => {
  it("pretty on a terminal, JSON on a pipe or file; TALLY_LOG_FORMAT forces one; anything else is an error", () => {
    expect(chooseLogFormat({}, true)).toBe("pretty");
    expect(chooseLogFormat({}, false)).toBe("json");
    expect(chooseLogFormat({ TALLY_LOG_FORMAT: "" }, false)).toBe("json");
    expect(chooseLogFormat({ TALLY_LOG_FORMAT: "json" }, true)).toBe("json");
    expect(chooseLogFormat({ TALLY_LOG_FORMAT: "pretty" }, false)).toBe("pretty");
    expect(() => chooseLogFormat({ TALLY_LOG_FORMAT: "xml" }, true)).toThrow('TALLY_LOG_FORMAT must be pretty or json, got "xml"');
  });

  it("pretty lines: time, level, node, component, message, then the fields; written before the call returns", () => {
    dir = mkdtempSync(join(tmpdir(), "tally-log-"));
    const path = join(dir, "out.log");
    const fd = openSync(path, "w");
    try {
      const logger = pino({ base: { pid: 1 } }, prettyDestination({ colorize: false, fd }));
      logger.child({ component: "tallyd", node: 2 }).info({ client: "127.0.0.1:7002" }, "tallyd serving");
      logger.child({ component: "raft" }).warn("no leader");
      // Synchronous: the lines are in the file now, with no flush and no worker thread.
      const lines = readFileSync(path, "utf8").split("\n");
      expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: n2 tallyd: tallyd serving \{"client":"127\.0\.0\.1:7002"\}$/);
      expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: raft: no leader$/);
    } finally {
      closeSync(fd);
    }
  });
});
