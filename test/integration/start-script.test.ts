/**
 * `npm start` (scripts/start.ts) as a newcomer uses it: it prints `tally cluster ready`, Ctrl-C
 * stops every node, and a second start on the same data keeps the counts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, expect, test } from "vitest";
import { stringify } from "yaml";
import { freePort, withDeadline } from "../support/cluster.js";
import { leaderClient } from "../support/raw-client.js";

const root = resolve(import.meta.dirname, "..", "..");
let child: ChildProcess | undefined;
let dir: string | undefined;

afterEach(() => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function startScript(configPath: string): { child: ChildProcess; ready: Promise<string>; exited: Promise<number | null> } {
  const started = spawn(process.execPath, [join(root, "node_modules", "tsx", "dist", "cli.mjs"), join(root, "scripts", "start.ts"), configPath], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TALLY_LOG_LEVEL: "warn" },
  });
  let output = "";
  const ready = new Promise<string>((resolveReady, reject) => {
    started.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("tally cluster ready")) resolveReady(output);
    });
    started.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    started.once("exit", () => reject(new Error(`start script exited early:\n${output}`)));
  });
  const exited = new Promise<number | null>((r) => started.once("exit", (code) => r(code)));
  return { child: started, ready, exited };
}

test("npm start: ready line, Ctrl-C stops all nodes, counts survive a restart", async () => {
  dir = mkdtempSync(join(tmpdir(), "tally-start-"));
  const nodes = [];
  for (let id = 1; id <= 3; id++) nodes.push({ id, client: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}`, zone: `z${id}`, dataDir: `data/n${id}` });
  const configPath = join(dir, "cluster.yaml");
  writeFileSync(configPath, stringify({ cluster: { shards: 2, electionTicks: 15, heartbeatTicks: 3, leaseDriftTicks: 3 }, nodes }));
  const endpoints = nodes.map((n) => n.client);

  let run = startScript(configPath);
  child = run.child;
  const banner = await withDeadline(run.ready, 60_000, "cluster ready");
  expect(banner).toContain(endpoints[0]);
  let leader = await leaderClient(endpoints, 1);
  const { clientId } = await leader.call("registerSession", { shardId: 1 });
  const key = Buffer.from("survivor");
  const shard = (await leader.call("routes", {})).shards.find((s: any) => s.shardId === 1);
  // Route the key to whichever shard owns it.
  const { slotOf } = await import("../../src/meta/slots.js");
  expect(slotOf(key) >= shard.slotStart && slotOf(key) < shard.slotEnd).toBe(true);
  await leader.call("add", { header: { shardId: 1, clientId, seq: "1", firstUnackedSeq: "1" }, key, delta: "42" });
  leader.close();

  run.child.kill("SIGINT");
  expect(await withDeadline(run.exited, 20_000, "start script exit")).toBe(0);

  run = startScript(configPath);
  child = run.child;
  await withDeadline(run.ready, 60_000, "cluster ready again");
  leader = await leaderClient(endpoints, 1);
  expect((await leader.call("get", { key })).value).toBe("42");
  leader.close();
  run.child.kill("SIGINT");
  expect(await withDeadline(run.exited, 20_000, "start script exit")).toBe(0);
});
