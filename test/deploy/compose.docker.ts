/**
 * The multi-host rehearsal of docs/deploy.md, on real containers: builds the base image and
 * deploy/Dockerfile's image (scripts/docker-deploy-image.sh), brings deploy/compose.yaml up (three
 * nodes, three containers, one private network, peers by host name), writes through the TypeScript
 * client, replaces tally-2's container with a new one on the same data volume, writes again, and
 * checks the exact counts from every node.
 *
 * Where each check runs: the client routes by the advertised names (tally-1:7000 ...), which only
 * resolve on the compose network, so the writes and linearizable reads run in a container there
 * (test/deploy/rehearsal-client.ts, bundled). From this host, over the ports compose publishes on
 * 127.0.0.1: /readyz of every node, each node's own view (STALE reads, at least as fresh as the
 * linearizable read), and a strong read answered by whichever node leads the key's shard.
 *
 * Needs the Docker daemon of scripts/docker-up.sh and docker-compose (or `docker compose`); run by
 * .ci/run through vitest.deploy.config.ts. The project, its containers, network and volumes are
 * removed after the run whatever happened; scripts/docker-down.sh removes any a killed run left.
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually, freePort } from "../support/cluster.js";
import { RawCallError, RawNodeClient } from "../support/raw-client.js";

const root = resolve(import.meta.dirname, "..", "..");
const run = promisify(execFile);
process.env.DOCKER_HOST ??= `unix://${process.env.TALLY_DOCKER_DIR ?? "/tmp/tally-docker"}/docker.sock`;

const NODES = [1, 2, 3] as const;
const KEYS = 16;
const IMAGE_BUILD_TIMEOUT_MS = 600_000;
const COMPOSE_TIMEOUT_MS = 120_000;
const READY_TIMEOUT_MS = 90_000;
const CLIENT_RUN_TIMEOUT_MS = 180_000;
const DOCKER_CALL_TIMEOUT_MS = 30_000;

const project = `tally-rehearsal-${process.pid}-${Date.now().toString(36)}`;
const network = `${project}_tally`;
const ports = new Map<number, { client: number; ops: number }>();
let compose: string[] = [];
let image = "";
let clientDir = "";
let composeEnv: NodeJS.ProcessEnv = {};
let passed = false;

async function sh(file: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd: root, env, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; stdout?: string; killed?: boolean; message: string };
    const why = failure.killed ? `killed after ${timeoutMs} ms` : failure.message.split("\n")[0];
    throw new Error(`${file} ${args.join(" ")}: ${why}\n${(failure.stderr ?? "").trim()}\n${(failure.stdout ?? "").trim()}`.trim(), {
      cause: error,
    });
  }
}

function composeRun(args: string[], timeoutMs = COMPOSE_TIMEOUT_MS): Promise<string> {
  const [file, ...prefix] = compose;
  return sh(file!, [...prefix, "-p", project, "-f", join(root, "deploy", "compose.yaml"), ...args], timeoutMs, composeEnv);
}

/** docker-compose v1 (Debian's package), else the compose plugin; neither is a clear failure. */
async function findCompose(): Promise<string[]> {
  for (const candidate of [["docker-compose"], ["docker", "compose"]]) {
    try {
      await sh(candidate[0]!, [...candidate.slice(1), "version"], DOCKER_CALL_TIMEOUT_MS);
      return candidate;
    } catch {
      // try the next
    }
  }
  throw new Error("neither docker-compose nor `docker compose` works here (apt-get install docker-compose)");
}

/** Bundles the rehearsal client to be mounted at /app/rehearsal: Node finds /app/node_modules and /app/proto from there. */
function bundleClient(): string {
  const dir = mkdtempSync(join(tmpdir(), "tally-rehearsal-"));
  chmodSync(dir, 0o755); // the image runs as uid 10001
  buildSync({
    entryPoints: [join(root, "test", "deploy", "rehearsal-client.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    outfile: join(dir, "client.mjs"),
    logLevel: "error",
  });
  chmodSync(join(dir, "client.mjs"), 0o644);
  return dir;
}

/** Runs the rehearsal client in a throwaway container on the compose network; returns its JSON. */
async function client(args: string[]): Promise<any> {
  const endpoints = NODES.map((id) => `tally-${id}:7000`).join(",");
  const stdout = await sh(
    "docker",
    [
      "run",
      "--rm",
      "--network",
      network,
      "-v",
      `${clientDir}:/app/rehearsal:ro`,
      "--entrypoint",
      "/usr/bin/node",
      image,
      "/app/rehearsal/client.mjs",
      endpoints,
      ...args,
    ],
    CLIENT_RUN_TIMEOUT_MS,
  );
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

async function ready(id: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${ports.get(id)!.ops}/readyz`, { signal: AbortSignal.timeout(2000) });
    return response.status === 200;
  } catch {
    return false;
  }
}

async function containerOf(service: string): Promise<{ id: string; volume: string }> {
  const id = (await composeRun(["ps", "-q", service], DOCKER_CALL_TIMEOUT_MS)).trim();
  if (id === "") throw new Error(`no container for ${service}`);
  const mounts = JSON.parse(await sh("docker", ["inspect", "--format", "{{json .Mounts}}", id], DOCKER_CALL_TIMEOUT_MS)) as Array<{
    Name?: string;
    Destination: string;
  }>;
  return { id, volume: mounts.find((mount) => mount.Destination === "/data")?.Name ?? "" };
}

const expected = new Map<string, bigint>();
const startedAtMs = Date.now();

/** One line per step with the time since the start, so a slow CI run shows where it went. */
async function step<T>(what: string, work: () => Promise<T>): Promise<T> {
  const at = Date.now();
  const result = await work();
  process.stderr.write(
    `rehearsal: ${what}: ${((Date.now() - at) / 1000).toFixed(1)} s (at ${((Date.now() - startedAtMs) / 1000).toFixed(0)} s)\n`,
  );
  return result;
}

function expectAdded(prefix: string, increments: number): void {
  for (let i = 0; i < increments; i++) {
    const key = `${prefix}-${i % KEYS}`;
    expected.set(key, (expected.get(key) ?? 0n) + 1n);
  }
}

/**
 * Exact counts: linearizable through the client (on the network); from this host, a strong read on
 * the node leading each key's shard (the others answer NOT_LEADER) and every node's own STALE view,
 * waited for until it has applied what the linearizable read saw.
 */
async function checkCounts(prefix: string): Promise<void> {
  const linearizable = await client(["read", prefix, String(KEYS)]);
  for (let k = 0; k < KEYS; k++) {
    const key = `${prefix}-${k}`;
    expect(BigInt(linearizable.values[key]), `linearizable ${key}`).toBe(expected.get(key));
  }
  const nodes = NODES.map((id) => new RawNodeClient(`127.0.0.1:${ports.get(id)!.client}`));
  try {
    for (let k = 0; k < KEYS; k++) {
      const key = `${prefix}-${k}`;
      const want = expected.get(key)!.toString();
      const strong = await eventually(
        async () => {
          for (const node of nodes) {
            try {
              return (await node.call("get", { key: Buffer.from(key) })).value as string;
            } catch (error) {
              if (!(error instanceof RawCallError) || error.code !== "NOT_LEADER") throw error;
            }
          }
          return undefined;
        },
        20_000,
        `a leader to answer a strong read of ${key}`,
      );
      expect(strong, `strong read of ${key} at its leader`).toBe(want);
      for (const [i, node] of nodes.entries()) {
        const view = await eventually(
          async () => {
            const read = await node.call("get", { key: Buffer.from(key), consistency: "STALE", minIndex: linearizable.applied[key] });
            return read.value === want ? read.value : undefined;
          },
          20_000,
          `node ${NODES[i]}'s view of ${key} to reach ${want}`,
        );
        expect(view).toBe(want);
      }
    }
  } finally {
    for (const node of nodes) node.close();
  }
}

describe("deploy/compose.yaml: three containers, one replaced on its volume", () => {
  beforeAll(
    async () => {
      compose = await findCompose();
      const built = await step("images built", () => sh(join(root, "scripts", "docker-deploy-image.sh"), [], IMAGE_BUILD_TIMEOUT_MS));
      image = built.trim().split("\n").pop() ?? "";
      expect(image).toMatch(/^tally:[\w.-]+-[0-9a-f]{12}$/);
      clientDir = bundleClient();
      composeEnv = { ...process.env, TALLY_IMAGE: image };
      for (const id of NODES) {
        ports.set(id, { client: await freePort(), ops: await freePort() });
        composeEnv[`TALLY_PORT_${id}`] = String(ports.get(id)!.client);
        composeEnv[`TALLY_OPS_PORT_${id}`] = String(ports.get(id)!.ops);
      }
      await step("compose up", () => composeRun(["up", "-d"]));
      await step("all ready", () =>
        eventually(async () => (await Promise.all(NODES.map(ready))).every(Boolean), READY_TIMEOUT_MS, "/readyz on all three nodes"),
      );
    },
    IMAGE_BUILD_TIMEOUT_MS + COMPOSE_TIMEOUT_MS + READY_TIMEOUT_MS,
  );

  afterAll(async () => {
    if (compose.length > 0) {
      try {
        // The last lines of every node, for a failed run's report.
        if (!passed) process.stderr.write((await composeRun(["logs", "--no-color", "--tail", "20"]).catch(() => "")).slice(-20_000));
      } finally {
        await composeRun(["down", "-v", "--remove-orphans", "-t", "10"]).catch((error: Error) =>
          process.stderr.write(`rehearsal teardown: ${error.message}\n`),
        );
      }
    }
    if (clientDir !== "") rmSync(clientDir, { recursive: true, force: true });
  }, COMPOSE_TIMEOUT_MS + DOCKER_CALL_TIMEOUT_MS);

  test("exact counts on every node after writes before, during and after tally-2 is replaced", async () => {
    const prefix = `rehearsal-${Date.now().toString(36)}`;
    expect((await step("2000 adds", () => client(["add", prefix, String(KEYS), "2000"]))).added).toBe(2000);
    expectAdded(prefix, 2000);
    await step("counts checked", () => checkCounts(prefix));

    const old = await containerOf("tally-2");
    await step("tally-2 removed", () => composeRun(["rm", "-s", "-f", "tally-2"]));
    // Two of three nodes still make a quorum for every shard: writes go on.
    expect((await step("500 adds without tally-2", () => client(["add", prefix, String(KEYS), "500"]))).added).toBe(500);
    expectAdded(prefix, 500);

    await step("new tally-2 created", () => composeRun(["up", "-d", "tally-2"]));
    const replaced = await containerOf("tally-2");
    expect(replaced.id).not.toBe(old.id);
    expect(replaced.volume).toBe(old.volume);
    expect(replaced.volume).toBe(`${project}_tally-2-data`);
    await step("new tally-2 ready", () => eventually(() => ready(2), READY_TIMEOUT_MS, "the new tally-2 to serve (/readyz)"));

    expect((await step("1000 adds", () => client(["add", prefix, String(KEYS), "1000"]))).added).toBe(1000);
    expectAdded(prefix, 1000);
    await step("counts checked", () => checkCounts(prefix));
    passed = true;
  }, 300_000);
});
