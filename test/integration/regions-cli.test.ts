/**
 * Two regions with the replicator as its own process (`tallyctl regions replicate`, from the
 * bundle) reading region: and regions: from a cluster file: adds in both regions, the replicator
 * killed with SIGKILL and started again, `tallyctl get --global` and `tallyctl regions`, and the
 * replicator's metrics. Every process started here is killed by its PID in teardown.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { eventually, freePort } from "../support/cluster.js";
import { RegionMesh } from "../support/regions.js";
import { tallyctl } from "../support/tallyctl.js";

const root = resolve(import.meta.dirname, "../..");

describe("tallyctl regions replicate (two regions, one process per region)", () => {
  let mesh: RegionMesh;
  let replicatorConfig: string;
  let metricsAddress: string;
  const replicators: ChildProcess[] = [];
  let output = "";
  const totals = new Map<string, bigint>();

  const startReplicator = (): ChildProcess => {
    const child = spawn(
      process.execPath,
      [join(root, "bin", "tallyctl.js"), "--config", replicatorConfig, "regions", "replicate", "--metrics", metricsAddress],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TALLY_LOG_LEVEL: "warn" } },
    );
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    replicators.push(child);
    return child;
  };

  const kill = async (child: ChildProcess): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGKILL");
    await exited;
  };

  const add = async (region: string, key: string, delta: bigint): Promise<void> => {
    await mesh.region(region).client.add(key, delta);
    totals.set(key, (totals.get(key) ?? 0n) + delta);
  };

  const globalIn = async (region: string, key: string): Promise<bigint> => {
    const { code, output: text } = await tallyctl(mesh.region(region).cluster.endpoints(), "--json", "get", key, "--global");
    if (code !== 0) throw new Error(text);
    return BigInt((JSON.parse(text) as { value: string }).value);
  };

  beforeAll(async () => {
    mesh = await RegionMesh.start(["a", "b"]);
    mesh.shapeAll({ latencyMs: 20 });
    // Region b's file, plus region: and regions: naming a through the a>b proxy.
    const b = mesh.region("b").cluster;
    const document = parse(readFileSync(b.configPath, "utf8")) as Record<string, unknown>;
    const proxy = `127.0.0.1:${mesh.proxies.get("a>b")![0]!.listenPort}`;
    document.region = "b";
    document.regions = [{ name: "a", endpoints: [proxy], addressMap: { [mesh.region("a").cluster.config.nodes[0]!.client]: proxy } }];
    replicatorConfig = join(b.dir, "replicator.yaml");
    writeFileSync(replicatorConfig, stringify(document));
    metricsAddress = `127.0.0.1:${await freePort()}`;
  }, 90_000);

  afterAll(async () => {
    for (const child of replicators) await kill(child);
    await mesh?.destroy();
  });

  it("ships a's adds into b's global reads across a replicator crash", async () => {
    for (let i = 1; i <= 5; i++) await add("a", "orders", BigInt(i));
    await add("b", "orders", -3n);
    const first = startReplicator();
    await eventually(
      async () => (await globalIn("b", "orders")) === totals.get("orders"),
      30_000,
      "b's global read of orders",
      () => output,
    );

    await kill(first);
    for (let i = 0; i < 10; i++) await add("a", "orders", 7n);
    await add("a", "refunds", -4n);
    startReplicator();
    for (const key of ["orders", "refunds"])
      await eventually(
        async () => (await globalIn("b", key)) === totals.get(key),
        30_000,
        `b's global read of ${key}`,
        () => output,
      );

    const status = await tallyctl(mesh.region("b").cluster.endpoints(), "regions");
    expect(status.code).toBe(0);
    expect(status.output).toMatch(/^a\s+yes\s+/m);
    const metrics = await eventually(
      async () => {
        const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
        return /tally_region_lag_ms\{region="a"\} \d+/.test(text) ? text : undefined;
      },
      10_000,
      "the replicator's lag metric",
    );
    expect(metrics).toMatch(/tally_region_applied_origin_index\{region="a",shard="\d+"\} [1-9]/);

    // forget leaves a out of b's global reads; activate brings it back.
    expect((await tallyctl(mesh.region("b").cluster.endpoints(), "regions", "forget", "a")).code).toBe(0);
    expect(await globalIn("b", "orders")).toBe(-3n);
    expect((await tallyctl(mesh.region("b").cluster.endpoints(), "regions", "activate", "a")).code).toBe(0);
    expect(await globalIn("b", "orders")).toBe(totals.get("orders"));
  });

  it("refuses a bad region name with a clear error", async () => {
    const { code, output: text } = await tallyctl(mesh.region("b").cluster.endpoints(), "regions", "forget", "Bad_Name");
    expect(code).not.toBe(0);
    expect(text).toMatch(/region name/);
  });
});
