/**
 * The chaos harness's container backend: every `tallyd` runs in its own container (testcontainers,
 * from the locally built image of scripts/docker-image.sh; nothing is ever pulled) on a Docker
 * network this run creates with its own /24, each node at a fixed address so cluster.yaml can name
 * it before anything starts and a restarted container comes back at the same place. The workload
 * on the host reaches the nodes at those addresses over the network's bridge.
 *
 * Faults: kill -9 is `docker kill` (the data directory is a bind mount, so `docker start` resumes
 * on it); a clock-skewed restart recreates the container with a new TALLY_TEST_CLOCK_OFFSET_MS;
 * pause is `docker pause` (cgroup freezer); a cut link is an iptables DROP inside the receiving
 * container of the sender's packets to the peer port, so partitions can be one-way, as in the
 * process backend (client traffic is not cut). No latency/bandwidth shaping here.
 *
 * Every container and the network carry the label tally.chaos=<run id> and the owner PID; teardown
 * removes them (also after a failed start), a later run removes those whose owner has died, and
 * scripts/docker-down.sh removes any left. Every Docker call has a deadline.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type Dockerode from "dockerode";
import { GenericContainer, Wait, getContainerRuntimeClient, type ImagePullPolicy, type StartedTestContainer } from "testcontainers";
import { stringify } from "yaml";
import { loadClusterConfig } from "../../src/server/config/config.js";
import { createPrng } from "../../src/util/prng.js";
import { withDeadline } from "../support/cluster.js";
import { BaseCluster, chaosClusterDocument, type ClusterOptions, type Link } from "./backend.js";
import { DiskVolumes } from "./disk-volume.js";

const root = resolve(import.meta.dirname, "..", "..");
/** Where scripts/docker-up.sh puts the daemon's socket unless TALLY_DOCKER_DIR says otherwise. */
const DEFAULT_DOCKER_HOST = `unix://${process.env.TALLY_DOCKER_DIR ?? "/tmp/tally-docker"}/docker.sock`;
const CLIENT_PORT = 7001;
const PEER_PORT = 7100;
const IMAGE_BUILD_TIMEOUT_MS = 600_000;
const DOCKER_CALL_TIMEOUT_MS = 30_000;
const NODE_START_TIMEOUT_MS = 60_000;
const NETWORK_ATTEMPTS = 8;
const LABEL_RUN = "tally.chaos";
const LABEL_OWNER = "tally.chaos.owner";
const NEVER_PULL: ImagePullPolicy = { shouldPull: () => false };

const run = promisify(execFile);

/** testcontainers settings for a private daemon with no registry and no reaper image. */
function configureTestcontainersEnvironment(): void {
  process.env.DOCKER_HOST ??= DEFAULT_DOCKER_HOST;
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "127.0.0.1";
}

/** Builds (or finds) tally-node:<hash> for the current sources; returns the image name. */
async function nodeImage(): Promise<string> {
  try {
    const { stdout } = await run(join(root, "scripts", "docker-image.sh"), [], {
      timeout: IMAGE_BUILD_TIMEOUT_MS,
      killSignal: "SIGKILL",
      env: process.env,
    });
    const image = stdout.trim().split("\n").pop() ?? "";
    if (!/^tally-node:[0-9a-f]+$/.test(image)) throw new Error(`scripts/docker-image.sh printed no image name: ${stdout}`);
    return image;
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr ?? (error as Error).message;
    throw new Error(`cannot build the node image (is docker up? run scripts/docker-up.sh): ${detail.trim()}`, { cause: error });
  }
}

/** A GenericContainer at a fixed IPv4 address on one network (testcontainers has no setter for it). */
class FixedAddressContainer extends GenericContainer {
  withFixedAddress(networkName: string, ipv4: string): this {
    this.createOpts.NetworkingConfig = { EndpointsConfig: { [networkName]: { IPAMConfig: { IPv4Address: ipv4 } } } };
    return this.withNetworkMode(networkName);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Parses a dotted IPv4 address into an unsigned 32-bit integer. */
function ipv4ToNumber(address: string): number {
  return address.split(".").reduce((value, octet) => value * 256 + Number(octet), 0);
}

/**
 * Whether the /24 at `prefix` overlaps a network the host already routes to (other than the default
 * route). Docker checks a given subnet against its own networks only; taking one the host uses
 * would hijack that traffic onto our bridge.
 */
function routedOnHost(prefix: string): boolean {
  const subnet = ipv4ToNumber(`${prefix}.0`);
  const lines = readFileSync("/proc/net/route", "utf8").trim().split("\n").slice(1);
  return lines.some((line) => {
    const [, destinationHex, , , , , , maskHex] = line.trim().split(/\s+/);
    // /proc/net/route prints addresses as little-endian hex.
    const destination = Buffer.from(destinationHex ?? "0", "hex").readUInt32LE(0);
    const mask = Buffer.from(maskHex ?? "0", "hex").readUInt32LE(0);
    if (mask === 0) return false;
    const common = Math.min(mask, 0xffffff00) >>> 0;
    return (destination & common) >>> 0 === (subnet & common) >>> 0;
  });
}

interface NodeContainer {
  container: StartedTestContainer;
  clockOffsetMs: number;
}

export class ContainerCluster extends BaseCluster {
  readonly name = "container";
  readonly runId = `tally-chaos-${process.pid}-${Date.now().toString(36)}`;
  readonly dir: string;
  private docker!: Dockerode;
  private image = "";
  private networkName = "";
  private readonly addresses = new Map<number, string>();
  private readonly containers = new Map<number, NodeContainer>();
  /** Node id -> its data directory on this host (bind-mounted at /data/n<id>). */
  private readonly hostDataDir = new Map<number, string>();
  private readonly running = new Set<number>();
  private readonly paused = new Set<number>();

  private constructor(readonly options: ClusterOptions) {
    super();
    this.dir = mkdtempSync(join(tmpdir(), "tally-chaos-container-"));
  }

  static async start(options: ClusterOptions, readyTimeoutMs = 60_000): Promise<ContainerCluster> {
    const cluster = new ContainerCluster(options);
    await cluster.bringUp(readyTimeoutMs);
    return cluster;
  }

  endpoints(): string[] {
    return this.config.nodes.map((n) => n.client);
  }

  private labels(): Record<string, string> {
    return { [LABEL_RUN]: this.runId, [LABEL_OWNER]: String(process.pid) };
  }

  protected async setUp(): Promise<void> {
    configureTestcontainersEnvironment();
    this.image = await nodeImage();
    const runtime = await withDeadline(
      getContainerRuntimeClient(),
      DOCKER_CALL_TIMEOUT_MS,
      `no Docker daemon answered at ${process.env.DOCKER_HOST}`,
    );
    this.docker = runtime.container.dockerode;
    await this.removeOrphans();
    const prefix = await this.createNetwork();
    if (this.options.diskFaults) this.volumes = new DiskVolumes(this.dir);
    this.controlFile(1);
    const nodes = [];
    for (let id = 1; id <= this.options.nodes; id++) {
      const address = `${prefix}.${10 + id}`;
      this.addresses.set(id, address);
      this.hostDataDir.set(id, this.volumes !== undefined ? join(this.dir, this.volumes.mount(id)) : join(this.dir, `n${id}`));
      mkdirSync(this.hostDataDir.get(id)!, { recursive: true });
      nodes.push({
        id,
        client: `${address}:${CLIENT_PORT}`,
        peer: `${address}:${PEER_PORT}`,
        zone: `z${id}`,
        host: `${id}`,
        dataDir: `/data/n${id}`,
      });
    }
    writeFileSync(join(this.dir, "cluster.yaml"), stringify(chaosClusterDocument(this.options, nodes)));
    this.config = loadClusterConfig(join(this.dir, "cluster.yaml"));
  }

  /** Containers and networks of earlier runs whose harness process died without tearing down. */
  private async removeOrphans(): Promise<void> {
    const orphaned = (labels: Record<string, string> | undefined): boolean => {
      const owner = Number(labels?.[LABEL_OWNER]);
      return Number.isInteger(owner) && owner > 0 && !isAlive(owner);
    };
    const containers = await withDeadline(
      this.docker.listContainers({ all: true, filters: { label: [LABEL_OWNER] } }),
      DOCKER_CALL_TIMEOUT_MS,
      "docker ps",
    );
    for (const info of containers.filter((c) => orphaned(c.Labels))) {
      await withDeadline(this.docker.getContainer(info.Id).remove({ force: true, v: true }), DOCKER_CALL_TIMEOUT_MS, "docker rm").catch(
        () => undefined,
      );
    }
    const networks = await withDeadline(
      this.docker.listNetworks({ filters: { label: [LABEL_OWNER] } }),
      DOCKER_CALL_TIMEOUT_MS,
      "docker network ls",
    );
    for (const info of networks.filter((n) => orphaned(n.Labels))) {
      await withDeadline(this.docker.getNetwork(info.Id).remove(), DOCKER_CALL_TIMEOUT_MS, "docker network rm").catch(() => undefined);
    }
  }

  /** A bridge network on a free 10.213.x.0/24 (Docker refuses pools that overlap); returns "10.213.x". */
  private async createNetwork(): Promise<string> {
    const rng = createPrng((this.options.seed ?? 1) ^ process.pid);
    let lastError: unknown;
    for (let attempt = 0; attempt < NETWORK_ATTEMPTS; attempt++) {
      const prefix = `10.213.${rng.nextInt(256)}`;
      if (routedOnHost(prefix)) continue;
      try {
        await withDeadline(
          this.docker.createNetwork({
            Name: this.runId,
            Driver: "bridge",
            Labels: this.labels(),
            IPAM: { Config: [{ Subnet: `${prefix}.0/24`, Gateway: `${prefix}.1` }] },
          }),
          DOCKER_CALL_TIMEOUT_MS,
          "docker network create",
        );
        this.networkName = this.runId;
        return prefix;
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(
      `cannot create a Docker network on a free 10.213.x.0/24: ${(lastError as Error | undefined)?.message ?? "every one tried is routed on this host"}`,
      { cause: lastError },
    );
  }

  async startNode(id: number, clockOffsetMs = this.clockOffsetOf(id)): Promise<void> {
    if (this.running.has(id)) throw new Error(`node ${id} is already running`);
    const existing = this.containers.get(id);
    if (existing !== undefined && existing.clockOffsetMs === clockOffsetMs) {
      // docker start: same container, same address, same data (the bind mount).
      const since = Math.floor(Date.now() / 1000) - 1;
      const handle = this.docker.getContainer(existing.container.getId());
      await withDeadline(handle.start(), DOCKER_CALL_TIMEOUT_MS, `docker start n${id}`);
      this.running.add(id);
      await this.waitServing(id, handle, since);
      return;
    }
    // The environment is fixed at creation: a new clock offset needs a new container on the same data.
    if (existing !== undefined) await this.removeContainer(id);
    const container = await withDeadline(
      new FixedAddressContainer(this.image)
        .withName(`${this.runId}-n${id}`)
        .withLabels(this.labels())
        .withFixedAddress(this.networkName, this.addresses.get(id)!)
        .withCommand(["--config", "/cluster/cluster.yaml", "--node", String(id)])
        .withEnvironment({
          TALLY_LOG_LEVEL: process.env.TALLY_LOG_LEVEL ?? "warn",
          ...this.options.extraEnv,
          TALLY_TEST_CLOCK_OFFSET_MS: String(clockOffsetMs),
          TALLY_TEST_CONTROL_FILE: `/control/n${id}.json`,
        })
        .withBindMounts([
          { source: join(this.dir, "cluster.yaml"), target: "/cluster/cluster.yaml", mode: "ro" },
          { source: this.hostDataDir.get(id)!, target: `/data/n${id}`, mode: "rw" },
          { source: join(this.dir, "control"), target: "/control", mode: "ro" },
        ])
        .withAddedCapabilities("NET_ADMIN")
        .withPullPolicy(NEVER_PULL)
        .withWaitStrategy(Wait.forLogMessage(/serving clients on/))
        .withStartupTimeout(NODE_START_TIMEOUT_MS)
        .start(),
      NODE_START_TIMEOUT_MS + DOCKER_CALL_TIMEOUT_MS,
      `node ${id}'s container did not start`,
    );
    this.containers.set(id, { container, clockOffsetMs });
    this.running.add(id);
  }

  clockOffsetOf(id: number): number {
    return this.containers.get(id)?.clockOffsetMs ?? 0;
  }

  private handle(id: number): Dockerode.Container {
    const node = this.containers.get(id);
    if (node === undefined) throw new Error(`node ${id} has no container`);
    return this.docker.getContainer(node.container.getId());
  }

  async kill(id: number): Promise<void> {
    if (!this.running.has(id)) return;
    const container = this.handle(id);
    await withDeadline(container.kill({ signal: "SIGKILL" }), DOCKER_CALL_TIMEOUT_MS, `docker kill n${id}`);
    // Killed is not yet stopped: wait until Docker has reaped it, so a `docker start` cannot race.
    await withDeadline(container.wait({ condition: "not-running" }), DOCKER_CALL_TIMEOUT_MS, `n${id} did not stop after docker kill`);
    this.running.delete(id);
    this.paused.delete(id);
  }

  async pause(id: number): Promise<void> {
    if (!this.running.has(id) || this.paused.has(id)) return;
    await withDeadline(this.handle(id).pause(), DOCKER_CALL_TIMEOUT_MS, `docker pause n${id}`);
    this.paused.add(id);
  }

  async resume(id: number): Promise<void> {
    if (!this.paused.has(id)) return;
    await withDeadline(this.handle(id).unpause(), DOCKER_CALL_TIMEOUT_MS, `docker unpause n${id}`);
    this.paused.delete(id);
  }

  isRunning(id: number): boolean {
    return this.running.has(id);
  }

  isPaused(id: number): boolean {
    return this.paused.has(id);
  }

  /**
   * Until the restarted tallyd says it serves: a node that dies while starting is an error naming
   * its exit, not a container the run believes is up.
   */
  private async waitServing(id: number, handle: Dockerode.Container, sinceSeconds: number): Promise<void> {
    const deadline = Date.now() + NODE_START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const raw = await withDeadline(
        handle.logs({ stdout: true, stderr: true, since: sinceSeconds, follow: false }),
        DOCKER_CALL_TIMEOUT_MS,
        "docker logs",
      );
      if (/serving clients on/.test(Buffer.from(raw).toString("utf8"))) return;
      const { State } = await withDeadline(handle.inspect(), DOCKER_CALL_TIMEOUT_MS, `docker inspect n${id}`);
      if (!State.Running) {
        this.running.delete(id);
        throw new Error(`node ${id} exited while starting (${await this.exitInfo(id)}): ${(await this.logs(id)).slice(-1500)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`node ${id} did not say it serves within ${NODE_START_TIMEOUT_MS} ms of docker start`);
  }

  async exitInfo(id: number): Promise<string> {
    const node = this.containers.get(id);
    if (node === undefined) return "no container";
    const { State } = await withDeadline(
      this.docker.getContainer(node.container.getId()).inspect(),
      DOCKER_CALL_TIMEOUT_MS,
      `docker inspect n${id}`,
    );
    return `exit code ${State.ExitCode}${State.OOMKilled ? ", OOM-killed" : ""}${State.Error ? `, ${State.Error}` : ""}, finished ${State.FinishedAt}`;
  }

  async syncState(): Promise<number[]> {
    const died: number[] = [];
    await Promise.all(
      [...this.containers].map(async ([id, node]) => {
        const { State } = await withDeadline(
          this.docker.getContainer(node.container.getId()).inspect(),
          DOCKER_CALL_TIMEOUT_MS,
          `docker inspect n${id}`,
        );
        if (!State.Running && this.running.has(id)) died.push(id);
        if (State.Running) this.running.add(id);
        else this.running.delete(id);
        if (State.Running && State.Paused) this.paused.add(id);
        else this.paused.delete(id);
      }),
    );
    return died;
  }

  private async iptables(id: number, args: string[]): Promise<void> {
    const node = this.containers.get(id);
    if (node === undefined) throw new Error(`node ${id} has no container`);
    const result = await withDeadline(node.container.exec(["iptables", "-w", "5", ...args]), DOCKER_CALL_TIMEOUT_MS, `iptables in n${id}`);
    if (result.exitCode !== 0) throw new Error(`iptables ${args.join(" ")} in n${id} exited ${result.exitCode}: ${result.output.trim()}`);
  }

  /**
   * Drops, inside `to`, what `from` sends to `to`'s peer port: the connections `from` dials, which
   * carry its messages to `to` (one gRPC stream per ordered pair), stall. `to`'s own connection to
   * `from` (source port PEER_PORT on `from`'s side) is untouched, so a cut is one-way. A killed or
   * frozen receiver gets no rule (its network namespace goes away or cannot run exec).
   */
  async cutLinks(links: readonly Link[]): Promise<void> {
    const byReceiver = new Map<number, number[]>();
    for (const [from, to] of links) byReceiver.set(to, [...(byReceiver.get(to) ?? []), from]);
    await Promise.all(
      [...byReceiver].map(async ([to, senders]) => {
        if (!this.running.has(to) || this.paused.has(to)) return;
        for (const from of senders)
          await this.iptables(to, [
            "-A",
            "INPUT",
            "-s",
            this.addresses.get(from)!,
            "-p",
            "tcp",
            "--dport",
            String(PEER_PORT),
            "-j",
            "DROP",
          ]);
      }),
    );
  }

  async healNetwork(): Promise<void> {
    await Promise.all(
      this.nodeIds.filter((id) => this.running.has(id) && !this.paused.has(id)).map((id) => this.iptables(id, ["-F", "INPUT"])),
    );
  }

  async logs(id: number): Promise<string> {
    const node = this.containers.get(id);
    if (node === undefined) return "";
    const raw = await withDeadline(
      this.docker.getContainer(node.container.getId()).logs({ stdout: true, stderr: true, tail: 300, follow: false }),
      DOCKER_CALL_TIMEOUT_MS,
      "docker logs",
    );
    // Docker multiplexes stdout/stderr with 8-byte frame headers; drop their bytes, keep the text.
    return Buffer.from(raw)
      .toString("utf8")
      .replace(/[\x00-\x08\x0e-\x1f]/g, "");
  }

  private async removeContainer(id: number): Promise<void> {
    const node = this.containers.get(id);
    if (node === undefined) return;
    this.containers.delete(id);
    this.running.delete(id);
    this.paused.delete(id);
    await withDeadline(
      this.docker.getContainer(node.container.getId()).remove({ force: true, v: true }),
      DOCKER_CALL_TIMEOUT_MS,
      `docker rm n${id}`,
    );
  }

  async destroy(): Promise<void> {
    this.unwatchSignals();
    this.closeAdmins();
    this.containers.clear();
    this.running.clear();
    this.paused.clear();
    if (this.docker !== undefined) {
      // By label, not by what we recorded: a container whose start timed out is removed too.
      const ours = await withDeadline(
        this.docker.listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${this.runId}`] } }),
        DOCKER_CALL_TIMEOUT_MS,
        "docker ps",
      ).catch(() => []);
      await Promise.all(
        ours.map((info) =>
          withDeadline(this.docker.getContainer(info.Id).remove({ force: true, v: true }), DOCKER_CALL_TIMEOUT_MS, "docker rm").catch(
            () => undefined,
          ),
        ),
      );
    }
    if (this.networkName !== "") {
      await withDeadline(this.docker.getNetwork(this.networkName).remove(), DOCKER_CALL_TIMEOUT_MS, "docker network rm").catch(
        () => undefined,
      );
      this.networkName = "";
    }
    this.volumes?.unmountAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
