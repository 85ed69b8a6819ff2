/**
 * tallyd refuses to start with a message that names the bad field and a distinct exit code:
 * 2 for a bad config or arguments, 3 for an address in use or an unusable data directory.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { stringify } from "yaml";
import { freePort } from "../support/cluster.js";

const root = resolve(import.meta.dirname, "..", "..");
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tally-startup-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(config: unknown, node = "1"): { status: number | null; stderr: string } {
  const path = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, typeof config === "string" ? config : stringify(config));
  const result = spawnSync(process.execPath, [join(root, "bin", "tallyd.js"), "--config", path, "--node", node], {
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, TALLY_LOG_LEVEL: "silent" },
  });
  return { status: result.status, stderr: result.stderr };
}

async function occupy(port: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  return server;
}

async function single(overrides: Record<string, unknown> = {}) {
  return {
    cluster: { replicationFactor: 1, shards: 1 },
    nodes: [
      {
        id: 1,
        client: `127.0.0.1:${await freePort()}`,
        peer: `127.0.0.1:${await freePort()}`,
        dataDir: join(dir, `d${Math.random()}`),
        ...overrides,
      },
    ],
  };
}

test("a peer or client address in use is named, exit 3", async () => {
  const config = await single();
  const blocker = await occupy(Number(config.nodes[0]!.peer.split(":")[1]));
  const peerBusy = run(config);
  blocker.close();
  expect(peerBusy.status).toBe(3);
  expect(peerBusy.stderr).toContain(`nodes[0].peer (${config.nodes[0]!.peer}): address already in use`);

  const config2 = await single();
  const blocker2 = await occupy(Number(config2.nodes[0]!.client.split(":")[1]));
  const clientBusy = run(config2);
  blocker2.close();
  expect(clientBusy.status).toBe(3);
  expect(clientBusy.stderr).toContain(`nodes[0].client (${config2.nodes[0]!.client}): address already in use`);
});

test("an unusable data directory is named, exit 3", async () => {
  const file = join(dir, "not-a-dir");
  writeFileSync(file, "x");
  const result = run(await single({ dataDir: file }));
  expect(result.status).toBe(3);
  expect(result.stderr).toContain(`nodes[0].dataDir (${file})`);
});

test("bad config and unknown node: exit 2 naming the problem", async () => {
  const unknown = run(await single(), "7");
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toMatch(/unknown node 7/);
  const bad = run({ cluster: { replicationFactor: 1, electionTicks: 2, heartbeatTicks: 5 }, nodes: (await single()).nodes });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/cluster.electionTicks \(2\) must be greater than cluster.heartbeatTicks \(5\)/);
  const notYaml = run("nodes: [ {");
  expect(notYaml.status).toBe(2);
  expect(notYaml.stderr).toMatch(/not valid YAML/);
});

test("an auth section without a readable internal token file is refused, exit 2, and the token file's content is never printed", async () => {
  const grants = [{ prefix: "", roles: ["read"] }];
  const sha256 = "a".repeat(64);
  const missing = run({
    ...(await single()),
    auth: { internalTokenFile: join(dir, "no-such-token"), tokens: [{ name: "r", sha256, grants }] },
  });
  expect(missing.status).toBe(2);
  expect(missing.stderr).toContain("auth.internalTokenFile: cannot read");
  const short = join(dir, "short-token");
  writeFileSync(short, "tly_secretbutshort\n");
  const tooShort = run({ ...(await single()), auth: { internalTokenFile: short, tokens: [{ name: "r", sha256, grants }] } });
  expect(tooShort.status).toBe(2);
  expect(tooShort.stderr).toContain("at least 32 printable characters");
  expect(tooShort.stderr).not.toContain("tly_secretbutshort");
  const raw = run({ ...(await single()), auth: { internalTokenFile: short, tokens: [{ name: "r", sha256: "tly_notahash", grants }] } });
  expect(raw.status).toBe(2);
  expect(raw.stderr).toContain("auth.tokens[0].sha256 must be the token's SHA-256");
});
