/**
 * A tallyd started by a harness that dies (kill -9 of the test runner) must not live on: with
 * TALLY_EXIT_WITH_PARENT=1 it notices its parent is gone and stops itself.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, expect, test } from "vitest";
import { stringify } from "yaml";
import { eventually, freePort } from "../support/cluster.js";

const root = resolve(import.meta.dirname, "..", "..");
let dir: string | undefined;
let orphanPid: number | undefined;

afterEach(() => {
  if (orphanPid !== undefined) {
    try {
      process.kill(orphanPid, "SIGKILL");
    } catch {
      // already gone, as it should be
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Running, not merely a zombie waiting for its new parent to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

test("tallyd exits when the process that started it is killed", async () => {
  dir = mkdtempSync(join(tmpdir(), "tally-orphan-"));
  const configPath = join(dir, "cluster.yaml");
  writeFileSync(
    configPath,
    stringify({
      cluster: { replicationFactor: 1, shards: 1 },
      nodes: [{ id: 1, client: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}`, dataDir: "n1" }],
    }),
  );
  const parentScript = `
    const { spawn } = require("node:child_process");
    const child = spawn(process.execPath, [${JSON.stringify(join(root, "bin", "tallyd.js"))}, "--config", ${JSON.stringify(configPath)}, "--node", "1"],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TALLY_EXIT_WITH_PARENT: "1", TALLY_LOG_LEVEL: "warn" } });
    child.stdout.on("data", (d) => { if (String(d).includes("serving")) console.log("CHILD " + child.pid); });
    setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ["-e", parentScript], { stdio: ["ignore", "pipe", "inherit"] });
  const pid = await new Promise<number>((resolvePid, reject) => {
    let out = "";
    parent.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /CHILD (\d+)/.exec(out);
      if (match) resolvePid(Number(match[1]));
    });
    parent.once("exit", () => reject(new Error("parent exited early")));
  });
  orphanPid = pid;
  expect(alive(pid)).toBe(true);
  parent.kill("SIGKILL");
  await eventually(() => !alive(pid), 15_000, "the orphaned tallyd to exit");
});
