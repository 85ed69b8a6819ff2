/**
 * `npm start` (scripts/start.ts) as a newcomer uses it: it prints `tally cluster ready`, Ctrl-C
 * stops every node, and a second start on the same data keeps the counts. Failover on a laptop:
 * a node that exits leaves the others serving, `restart N` on stdin brings it back, and with
 * --restart-after a killed node comes back by itself. Every "Try it" line reaches the cluster
 * that was started from another file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, expect, test } from "vitest";
import { stringify } from "yaml";
import { runCli } from "../../src/cli/cli.js";
import { TallyClient } from "../../src/client/index.js";
import { eventually, freePort, withDeadline } from "../support/cluster.js";
import { RawNodeClient, leaderClient } from "../support/raw-client.js";

const root = resolve(import.meta.dirname, "..", "..");
let child: ChildProcess | undefined;
let dir: string | undefined;
/** Every tallyd PID a start script printed: none may outlive the test. */
const nodePids = new Set<number>();

afterEach(() => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  for (const pid of nodePids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  nodePids.clear();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface StartRun {
  child: ChildProcess;
  ready: Promise<string>;
  exited: Promise<number | null>;
  output(): string;
  /** Resolves with the output once `pattern` appears in it (at most `timeoutMs`). */
  waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray>;
}

function startScript(args: string[]): StartRun {
  const started = spawn(
    process.execPath,
    [join(root, "node_modules", "tsx", "dist", "cli.mjs"), join(root, "scripts", "start.ts"), ...args],
    {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, TALLY_LOG_LEVEL: "warn" },
    },
  );
  let output = "";
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    for (const pid of output.matchAll(/pid (\d+)/g)) nodePids.add(Number(pid[1]));
    for (const listener of listeners) listener();
  };
  started.stdout!.on("data", append);
  started.stderr!.on("data", append);
  const exited = new Promise<number | null>((r) => started.once("exit", (code) => r(code)));
  const waitFor = (pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> =>
    new Promise<RegExpExecArray>((resolveMatch, reject) => {
      const finish = (error: Error | undefined, match?: RegExpExecArray) => {
        listeners.delete(check);
        clearTimeout(timer);
        if (error !== undefined) reject(error);
        else resolveMatch(match!);
      };
      const check = () => {
        const match = pattern.exec(output);
        if (match !== null) finish(undefined, match);
        else if (started.exitCode !== null) finish(new Error(`start script exited (${started.exitCode}) before ${what}:\n${output}`));
      };
      const timer = setTimeout(
        () => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output:\n${output}`)),
        timeoutMs,
      );
      listeners.add(check);
      started.once("exit", check);
      check();
    });
  const ready = waitFor(/tally cluster ready[\s\S]*The next `npm start` keeps the counts\.\n/, 60_000, "cluster ready").then(() => output);
  return { child: started, ready, exited, output: () => output, waitFor };
}

async function writeConfig(): Promise<{ configPath: string; nodes: Array<{ id: number; client: string }> }> {
  dir = mkdtempSync(join(tmpdir(), "tally-start-"));
  const nodes = [];
  for (let id = 1; id <= 3; id++)
    nodes.push({
      id,
      client: `127.0.0.1:${await freePort()}`,
      peer: `127.0.0.1:${await freePort()}`,
      zone: `z${id}`,
      dataDir: `data/n${id}`,
    });
  const configPath = join(dir, "cluster.yaml");
  writeFileSync(configPath, stringify({ cluster: { shards: 2, electionTicks: 15, heartbeatTicks: 3, leaseDriftTicks: 3 }, nodes }));
  return { configPath, nodes };
}

function pidOf(banner: string, id: number): number {
  const match = new RegExp(`node ${id}  pid (\\d+)`).exec(banner);
  if (match === null) throw new Error(`no pid for node ${id} in:\n${banner}`);
  return Number(match[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A write through `writers` (not node `id`), then a STALE read on node `id` at that index: it is caught up and serving. */
async function servesAgain(id: number, nodes: Array<{ id: number; client: string }>, key: string): Promise<void> {
  const writers = new TallyClient({ endpoints: nodes.filter((n) => n.id !== id).map((n) => n.client), deadlineMs: 15_000 });
  try {
    const written = await writers.add(key, 1n);
    const replica = new RawNodeClient(nodes.find((n) => n.id === id)!.client);
    try {
      const read = await eventually(
        async () =>
          replica
            .call("get", { key: Buffer.from(key), consistency: "STALE", minIndex: String(written.fence.index) }, 2000)
            .catch(() => undefined),
        20_000,
        `node ${id} serves a read at index ${written.fence.index}`,
      );
      expect(read.value).toBe(String(written.value));
    } finally {
      replica.close();
    }
  } finally {
    await writers.close();
  }
}

test("npm start: ready line, Ctrl-C stops all nodes, counts survive a restart", async () => {
  const { configPath, nodes } = await writeConfig();
  const endpoints = nodes.map((n) => n.client);

  let run = startScript([configPath]);
  child = run.child;
  const banner = await run.ready;
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

  run = startScript([configPath]);
  child = run.child;
  await run.ready;
  leader = await leaderClient(endpoints, 1);
  expect((await leader.call("get", { key })).value).toBe("42");
  leader.close();
  run.child.kill("SIGINT");
  expect(await withDeadline(run.exited, 20_000, "start script exit")).toBe(0);
});

test("npm start -- FILE: every Try-it line reaches it; a node's exit leaves the others serving; restart N and --restart-after bring it back", async () => {
  const { configPath, nodes } = await writeConfig();
  const run = startScript([configPath, "--restart-after", "1"]);
  child = run.child;
  const banner = await run.ready;
  const readyAt = Date.now(); // every node was started before this

  // Try it: tallyctl lines carry --config FILE (not ./cluster.yaml, which is another cluster).
  const tryIt = banner.split("\n").map((line) => line.trim());
  const tallyctlLines = tryIt.filter((line) => line.startsWith("npx tallyctl "));
  expect(tallyctlLines.length).toBeGreaterThanOrEqual(3);
  for (const line of tallyctlLines) {
    expect(line).toContain(`--config ${configPath}`);
    const out: string[] = [];
    const args = line.slice("npx tallyctl ".length).split(/\s+/);
    const code = await runCli(args, {
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(t),
      cwd: root,
      env: {},
      createClient: (options) => new TallyClient(options),
    });
    expect(code, `${line}\n${out.join("")}`).toBe(0);
  }
  expect(tryIt).toContain(`TALLY_ENDPOINTS=${nodes.map((n) => n.client).join(",")} npx tsx scripts/example.ts`);

  // `stop 2`: a deliberate stop is reported, the others serve, and it is not restarted by itself.
  const pid2 = pidOf(banner, 2);
  run.child.stdin!.write("stop 2\n");
  await run.waitFor(
    new RegExp(`node 2 \\(pid ${pid2}\\) stopped: code 0[^\\n]*2 of 3 nodes still running`),
    15_000,
    "node 2 stop reported",
  );
  expect(alive(pid2)).toBe(false);
  await servesAgain(1, nodes, "failover:a");
  await new Promise((r) => setTimeout(r, 2_000)); // past --restart-after 1
  expect(run.output()).not.toMatch(/node 2 restarted/);
  expect(run.child.exitCode).toBe(null);

  // `restart 2`: back, caught up, serving.
  run.child.stdin!.write("restart 2\n");
  const restarted = await run.waitFor(/node 2 restarted \(pid (\d+)\)/, 15_000, "node 2 restarted");
  expect(Number(restarted[1])).not.toBe(pid2);
  await servesAgain(2, nodes, "failover:b");

  // Killed from outside (a crash, once it ran 10 s): --restart-after 1 brings it back.
  const pid3 = pidOf(banner, 3);
  const untilTenSecondsUpMs = readyAt + 10_500 - Date.now(); // younger nodes are crash loops: not restarted
  if (untilTenSecondsUpMs > 0) await new Promise((r) => setTimeout(r, untilTenSecondsUpMs));
  process.kill(pid3, "SIGKILL");
  await run.waitFor(
    new RegExp(`node 3 \\(pid ${pid3}\\) stopped: SIGKILL[^\\n]*\\n  restarting it in 1 s`),
    15_000,
    "node 3 kill reported",
  );
  await run.waitFor(/node 3 restarted \(pid \d+\)/, 15_000, "node 3 restarted by --restart-after");
  await servesAgain(3, nodes, "failover:c");

  run.child.kill("SIGINT");
  expect(await withDeadline(run.exited, 20_000, "start script exit")).toBe(0);
  for (const pid of nodePids) expect(alive(pid), `pid ${pid} outlived Ctrl-C`).toBe(false);
});
