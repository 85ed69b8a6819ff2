import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, type CliClient, type CliIo } from "../../src/cli/cli.js";
import { AmbiguousOperationError, ClusterUnreachableError } from "../../src/client/errors.js";
import type { ClusterStatus, MutationResult, ReadResult, RoutesSnapshot, TallyClientOptions } from "../../src/client/index.js";
import { OutOfRangeError, UnauthenticatedError, UnavailableError, VersionMismatchError } from "../../src/util/errors.js";

const fence = { term: 3n, index: 42n };
const mutation: MutationResult = { value: 9223372036854775807n, version: 42n, fence };

interface Recorded {
  method: string;
  args: unknown[];
}

/** A CliClient that records calls and answers from a script. */
function fakeClient(
  recorded: Recorded[],
  behaviour: Partial<Record<keyof CliClient, (...args: unknown[]) => Promise<unknown>>> = {},
): CliClient {
  const method =
    (name: keyof CliClient, fallback: () => unknown) =>
    async (...args: unknown[]): Promise<never> => {
      recorded.push({ method: name, args });
      return (behaviour[name] ? await behaviour[name]!(...args) : fallback()) as never;
    };
  return {
    connect: method("connect", () => undefined),
    add: method("add", () => mutation),
    set: method("set", () => mutation),
    reset: method("reset", () => ({ value: 0n, version: 43n, fence })),
    compareAndSet: method("compareAndSet", () => mutation),
    get: method("get", (): ReadResult => ({ value: -5n, version: 7n, exists: true, fence, appliedIndex: 50n })),
    status: method("status", () => status),
    routes: method("routes", () => routes),
    close: method("close", () => undefined),
    admin: method("admin", () => {
      throw new Error("no admin in this fake");
    }),
  } as CliClient;
}

const status: ClusterStatus = {
  answeredBy: "127.0.0.1:7001",
  nodes: [
    {
      nodeId: "2",
      clientAddress: "127.0.0.1:7002",
      zone: "z2",
      host: "h2",
      reachable: true,
      error: "",
      groups: [
        {
          groupId: 1,
          role: "FOLLOWER",
          term: 4n,
          leaderId: "1",
          commit: 120n,
          applied: 118n,
          lastIndex: 120n,
          leaseValid: false,
          epoch: 1n,
          peers: [],
        },
      ],
    },
    {
      nodeId: "1",
      clientAddress: "127.0.0.1:7001",
      zone: "z1",
      host: "h1",
      reachable: true,
      error: "",
      groups: [
        {
          groupId: 1,
          role: "LEADER",
          term: 4n,
          leaderId: "1",
          commit: 120n,
          applied: 120n,
          lastIndex: 121n,
          leaseValid: true,
          epoch: 1n,
          peers: [
            { nodeId: "2", match: 120n, lag: 1n, state: "replicate" },
            { nodeId: "3", match: 100n, lag: 21n, state: "probe" },
          ],
        },
      ],
    },
    { nodeId: "3", clientAddress: "127.0.0.1:7003", zone: "z3", host: "3", reachable: false, error: "connection refused", groups: [] },
  ],
};

const routes: RoutesSnapshot = {
  slotCount: 16384,
  shards: [
    {
      shardId: 1,
      slotStart: 0,
      slotEnd: 8192,
      epoch: 2n,
      replicas: [
        { nodeId: "1", address: "127.0.0.1:7001", role: "voter" },
        { nodeId: "2", address: "127.0.0.1:7002", role: "voter" },
      ],
      leaderId: "1",
      leaderAddress: "127.0.0.1:7001",
      term: 4n,
      leaderFromHint: false,
    },
  ],
};

let cwd: string;
beforeEach(async () => {
  cwd = await mkdtemp(join(tmpdir(), "tallyctl-test-"));
});
afterEach(async () => {
  await rm(cwd, { recursive: true, force: true });
});

async function run(
  argv: string[],
  behaviour: Parameters<typeof fakeClient>[1] = {},
  env: Record<string, string> = {},
  extraIo: Partial<CliIo> = {},
): Promise<{ code: number; stdout: string; stderr: string; calls: Recorded[]; clientOptions: TallyClientOptions[] }> {
  const calls: Recorded[] = [];
  const clientOptions: TallyClientOptions[] = [];
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    cwd,
    env,
    createClient: (options) => {
      clientOptions.push(options);
      return fakeClient(calls, behaviour);
    },
    ...extraIo,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr, calls, clientOptions };
}

const E = ["--endpoints", "127.0.0.1:7001,127.0.0.1:7002"];

describe("tallyctl parsing", () => {
  it("add KEY [DELTA]: default 1, negatives, int64 edges exact", async () => {
    const one = await run([...E, "add", "hits"]);
    expect(one.code).toBe(0);
    expect(one.calls.find((c) => c.method === "add")?.args.slice(0, 2)).toEqual(["hits", 1n]);
    const negative = await run(["add", "hits", "-5", ...E]);
    expect(negative.calls.find((c) => c.method === "add")?.args.slice(0, 2)).toEqual(["hits", -5n]);
    const edge = await run([...E, "add", "hits", "-9223372036854775808"]);
    expect(edge.calls.find((c) => c.method === "add")?.args[1]).toBe(-9223372036854775808n);
    // The client closes on every path.
    expect(one.calls.at(-1)?.method).toBe("close");
  });

  it("passes --timeout as the deadline and --endpoints as the client's endpoints", async () => {
    const result = await run(["--timeout", "1500", ...E, "set", "k", "12"]);
    expect(result.code).toBe(0);
    expect(result.clientOptions[0]).toMatchObject({ endpoints: ["127.0.0.1:7001", "127.0.0.1:7002"], deadlineMs: 1500 });
    expect(result.calls.find((c) => c.method === "set")?.args).toEqual(["k", 12n, { deadlineMs: 1500 }]);
  });

  it("get --stale --min-index, cas, reset", async () => {
    const get = await run([...E, "get", "k", "--stale", "--min-index", "77"]);
    expect(get.calls.find((c) => c.method === "get")?.args[1]).toMatchObject({ consistency: "stale", minIndex: 77n });
    const linear = await run([...E, "get", "k"]);
    expect(linear.calls.find((c) => c.method === "get")?.args[1]).toMatchObject({ consistency: "linearizable" });
    expect(linear.calls.find((c) => c.method === "get")?.args[1]).not.toHaveProperty("minIndex");
    const cas = await run([...E, "cas", "k", "0", "5"]);
    expect(cas.calls.find((c) => c.method === "compareAndSet")?.args.slice(0, 3)).toEqual(["k", 0n, 5n]);
    const reset = await run([...E, "reset", "k"]);
    expect(reset.code).toBe(0);
    expect(reset.stdout).toBe("k reset  (version 43, fence 3/42)\n");
  });

  it("usage errors exit 2 and send nothing", async () => {
    for (const argv of [
      [...E, "add"],
      [...E, "add", "k", "1.5"],
      [...E, "add", "k", "12abc"],
      [...E, "add", "k", "1", "2"],
      [...E, "set", "k"],
      [...E, "get", "k", "--min-index", "-1"],
      [...E, "cas", "k", "x", "1"],
      [...E, "frobnicate"],
      ["--timeout", "0", ...E, "get", "k"],
      ["--endpoints", ",", "get", "k"],
      [],
    ]) {
      const result = await run(argv);
      expect(result.code, argv.join(" ")).toBe(2);
      expect(
        result.calls.filter((c) => c.method !== "close"),
        argv.join(" "),
      ).toEqual([]);
      expect(result.stderr, argv.join(" ")).not.toBe("");
    }
  });

  it("--help exits 0", async () => {
    const result = await run(["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage: tallyctl");
  });
});

describe("tallyctl endpoints", () => {
  it("reads every node's client address from ./cluster.yaml", async () => {
    await writeFile(
      join(cwd, "cluster.yaml"),
      'nodes:\n  - { id: 1, client: "127.0.0.1:7001", peer: "127.0.0.1:8001", zone: z1, dataDir: d1 }\n  - id: 2\n    client: 127.0.0.1:7002\n    peer: 127.0.0.1:8002\n',
    );
    const result = await run(["get", "k"]);
    expect(result.code).toBe(0);
    expect(result.clientOptions[0]?.endpoints).toEqual(["127.0.0.1:7001", "127.0.0.1:7002"]);
  });

  it("prefers --endpoints, then $TALLY_ENDPOINTS, over cluster.yaml", async () => {
    await writeFile(join(cwd, "cluster.yaml"), 'nodes: [{ id: 1, client: "127.0.0.1:7001" }]\n');
    expect((await run(["get", "k"], {}, { TALLY_ENDPOINTS: "10.0.0.1:1" })).clientOptions[0]?.endpoints).toEqual(["10.0.0.1:1"]);
    expect((await run(["--endpoints", "h:2", "get", "k"], {}, { TALLY_ENDPOINTS: "10.0.0.1:1" })).clientOptions[0]?.endpoints).toEqual([
      "h:2",
    ]);
  });

  it("no endpoints, or a broken cluster.yaml, is a usage error", async () => {
    const none = await run(["get", "k"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no endpoints");
    await writeFile(join(cwd, "cluster.yaml"), "nodes: [ { id: 1 } ]\n");
    const broken = await run(["get", "k"]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain("no client address");
    await writeFile(join(cwd, "cluster.yaml"), "nodes: [ unclosed\n");
    expect((await run(["get", "k"])).code).toBe(2);
  });
});

describe("tallyctl exit codes and errors", () => {
  it("3 when the cluster is unreachable, with a hint", async () => {
    const result = await run([...E, "get", "k"], {
      connect: async () => {
        throw new ClusterUnreachableError(["127.0.0.1:7001", "127.0.0.1:7002"]);
      },
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toBe("error: cannot reach any of 127.0.0.1:7001,127.0.0.1:7002: is the cluster running? try `npm start`\n");
  });

  it("4 when a mutation is ambiguous", async () => {
    const result = await run([...E, "add", "k", "5"], {
      add: async () => {
        throw new AmbiguousOperationError('add on "k" (delta 5) may or may not have been applied', { kind: "add", key: "k", delta: 5n });
      },
    });
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('AMBIGUOUS: add on "k" (delta 5)');
    expect(result.stderr).toContain("may or may not have been applied");
  });

  it("1 with code and message for a definite error", async () => {
    const overflow = await run([...E, "add", "k", "1"], {
      add: async () => {
        throw new OutOfRangeError("int64 overflow");
      },
    });
    expect(overflow.code).toBe(1);
    expect(overflow.stderr).toBe("error: OUT_OF_RANGE: int64 overflow\n");
    const mismatch = await run([...E, "--json", "cas", "k", "3", "1"], {
      compareAndSet: async () => {
        throw new VersionMismatchError("version is 4", 4);
      },
    });
    expect(mismatch.code).toBe(1);
    expect(JSON.parse(mismatch.stdout)).toEqual({
      error: {
        code: "VERSION_MISMATCH",
        message:
          "VERSION_MISMATCH: k is at version 4, expected 3; nothing changed (the version is the log index of its last write: `tallyctl get k` prints it)",
        exitCode: 1,
      },
    });
  });

  it("cas on a missing counter: says how to create it (expected version 0, like etcd)", async () => {
    const missing = await run([...E, "cas", "quota:acme", "12", "999"], {
      compareAndSet: async () => {
        throw new VersionMismatchError('ops[0] (cas) on key "quota:acme": expected version 12, counter is at version 0', 0);
      },
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      "error: VERSION_MISMATCH: quota:acme does not exist (version 0), expected version 12: `tallyctl cas quota:acme 0 VALUE` creates it only if it is still absent (etcd's compare version = 0)\n",
    );
  });

  it("grpc-js transport text becomes a reason: the cause of an unreachable cluster, an UNAVAILABLE", async () => {
    const refused = new UnavailableError(
      "14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7001 (2026-11-23T10:00:00.000Z)",
    );
    const unreachable = await run([...E, "get", "k"], {
      connect: async () => {
        throw new ClusterUnreachableError(["127.0.0.1:7001"], { cause: refused });
      },
    });
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toBe(
      "error: cannot reach any of 127.0.0.1:7001 (connection refused): is the cluster running? try `npm start`\n",
    );
    const unavailable = await run([...E, "get", "k"], { get: async () => Promise.reject(refused) });
    expect(unavailable.stderr).toBe("error: UNAVAILABLE: connection refused\n");
    expect(unavailable.stderr).not.toMatch(/ECONNREFUSED|14 UNAVAILABLE/);
  });

  it("UNAUTHENTICATED without a token says where a token goes", async () => {
    const denied = await run([...E, "get", "k"], { get: async () => Promise.reject(new UnauthenticatedError("a token is required")) });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("pass --token-file FILE or set $TALLY_TOKEN");
    const withToken = await run([...E, "--token", "abc", "get", "k"], {
      get: async () => Promise.reject(new UnauthenticatedError("unknown token")),
    });
    expect(withToken.stderr).not.toContain("--token-file");
  });
});

describe("tallyctl output", () => {
  it("prints results on one line, or as JSON with 64-bit integers as strings", async () => {
    expect((await run([...E, "add", "hits", "2"])).stdout).toBe("hits = 9223372036854775807  (version 42, fence 3/42)\n");
    expect((await run([...E, "get", "hits"])).stdout).toBe("hits = -5  (version 7, fence 3/42, applied 50)\n");
    const missing = await run([...E, "get", "nope"], {
      get: async () => ({ value: 0n, version: 0n, exists: false, fence, appliedIndex: 50n }),
    });
    expect(missing.stdout).toBe("nope = 0  (does not exist; applied 50)\n");
    const json = await run([...E, "--json", "add", "hits", "2"]);
    expect(JSON.parse(json.stdout)).toEqual({
      key: "hits",
      value: "9223372036854775807",
      version: "42",
      fence: { term: "3", index: "42" },
    });
    const read = await run([...E, "get", "hits", "--json"]);
    expect(JSON.parse(read.stdout)).toEqual({
      key: "hits",
      value: "-5",
      version: "7",
      exists: true,
      fence: { term: "3", index: "42" },
      appliedIndex: "50",
    });
  });

  it("status --verbose: the verdict, then one aligned row per node and group, sorted, unreachable nodes shown", async () => {
    const result = await run([...E, "status", "--verbose"]);
    expect(result.code).toBe(5);
    const lines = result.stdout.split("\n").slice(2);
    expect(lines[0]).toMatch(/^NODE\s+ADDRESS\s+ZONE\s+HOST\s+GROUP\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAG\s+LEASE$/);
    expect(lines[1]).toMatch(/^1\s+127\.0\.0\.1:7001\s+z1\s+h1\s+1\s+leader\s+4\s+1\s+120\s+120\s+21\s+valid$/);
    expect(lines[2]).toMatch(/^2\s+127\.0\.0\.1:7002\s+z2\s+h2\s+1\s+follower\s+4\s+1\s+120\s+118\s+-\s+-$/);
    expect(lines[3]).toMatch(/^3\s+127\.0\.0\.1:7003\s+z3\s+3\s+-\s+unreachable$/);
    expect(result.stdout).toContain("node 3 (127.0.0.1:7003): connection refused");
    // Aligned: every column starts at the same offset on every row.
    const commitColumn = lines[0]!.indexOf("COMMIT");
    expect(lines[1]!.slice(commitColumn, commitColumn + 6)).toBe("   120");
    expect(result.stdout).toContain("3 nodes (2 reachable); answered by 127.0.0.1:7001");
    const json = await run([...E, "--json", "status"]);
    expect(JSON.parse(json.stdout).nodes[1].groups[0].peers[1]).toEqual({ nodeId: "3", match: "100", lag: "21", state: "probe" });
  });

  it("routes: shards, slot ranges, leaders", async () => {
    const result = await run([...E, "routes"]);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(/^SHARD\s+SLOTS\s+EPOCH\s+TERM\s+LEADER\s+REPLICAS$/);
    expect(lines[1]).toMatch(/^\s*1\s+0-8191\s+2\s+4\s+1 \(127\.0\.0\.1:7001\)\s+1:voter,2:voter$/);
    expect(result.stdout).toContain("1 shards over 16384 slots");
  });
});

describe("tallyctl status: a one-line verdict and an exit code", () => {
  const led: ClusterStatus = {
    answeredBy: "127.0.0.1:7001",
    nodes: status.nodes.map((node) => ({
      ...node,
      reachable: true,
      error: "",
      groups: node.groups.length > 0 ? node.groups : [{ ...status.nodes[0]!.groups[0]!, role: "FOLLOWER" }],
    })),
  };

  it("healthy: exit 0, the verdict first, a row per node and per shard", async () => {
    const result = await run([...E, "status"], { status: async () => led });
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toBe("healthy: 3/3 nodes, 1/1 shards with a leader");
    expect(result.stdout).toMatch(/^NODE\s+ADDRESS\s+ZONE\s+HOST\s+STATE\s+ALIVE\s+GROUPS\s+LEADERS$/m);
    expect(result.stdout).toMatch(/^1\s+127\.0\.0\.1:7001\s+z1\s+h1\s+-\s+yes\s+1\s+1$/m);
    expect(result.stdout).toMatch(/^SHARD\s+SLOTS\s+LEADER\s+TERM\s+COMMIT\s+LAG\s+LEASE\s+REPLICAS$/m);
    expect(result.stdout).toMatch(/^1\s+-\s+1\s+4\s+120\s+21\s+valid\s+3$/m);
    expect(result.stdout).toContain("3 nodes (3 reachable); answered by 127.0.0.1:7001");
  });

  it("degraded: a node down is exit 5, named, with its reason in words", async () => {
    const down = {
      ...status,
      nodes: status.nodes.map((node) =>
        node.nodeId === "3"
          ? { ...node, error: "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7003 (2026-11-23T10:00:00.000Z)" }
          : node,
      ),
    };
    const result = await run([...E, "status"], { status: async () => down });
    expect(result.code).toBe(5);
    expect(result.stdout.split("\n")[0]).toBe("degraded: node 3 unreachable (2/3 nodes, 1/1 shards with a leader)");
    expect(result.stdout).toContain("node 3 (127.0.0.1:7003): connection refused");
    expect(result.stdout).not.toContain("ECONNREFUSED");
  });

  it("unavailable: a shard without a leader among the nodes that answered is exit 6", async () => {
    const leaderless: ClusterStatus = {
      ...status,
      nodes: status.nodes.map((node) => ({ ...node, groups: node.groups.map((group) => ({ ...group, role: "FOLLOWER" })) })),
    };
    const result = await run([...E, "status"], { status: async () => leaderless });
    expect(result.code).toBe(6);
    expect(result.stdout.split("\n")[0]).toBe(
      "unavailable: shard 1 has no leader; node 3 unreachable (2/3 nodes, 0/1 shards with a leader)",
    );
    expect(result.stdout).toMatch(/^1\s+-\s+none\s+-\s+-\s+-\s+-\s+2$/m);
    const json = await run([...E, "-w", "json", "status"], { status: async () => leaderless });
    expect(json.code).toBe(6);
    expect(JSON.parse(json.stdout).verdict).toEqual({
      state: "unavailable",
      line: "unavailable: shard 1 has no leader; node 3 unreachable (2/3 nodes, 0/1 shards with a leader)",
    });
  });
});

describe("tallyctl endpoint health", () => {
  const reply = (nodeId: string, leaderId = "1") => ({
    nodes: [
      {
        nodeId,
        groups: [
          { groupId: 0, role: "FOLLOWER", leaderId },
          { groupId: 1, role: nodeId === leaderId ? "LEADER" : "FOLLOWER", leaderId },
        ],
      },
    ],
  });
  const refused = new UnavailableError("14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7002");
  const address = (options: unknown) => (options as { address: string }).address;
  const serving = (statuses: Record<string, string | Error>): Partial<CliIo> => ({
    healthCheck: async (endpoint, options) => {
      expect(options.deadlineMs).toBeLessThanOrEqual(3_000);
      const status = statuses[endpoint];
      if (status instanceof Error) throw status;
      return status as "SERVING";
    },
  });

  it("a line per endpoint: the health check's verdict, the node's own status for details; exit 0 when all serve", async () => {
    const result = await run(
      [...E, "endpoint", "health"],
      { admin: async (_method, _request, options) => reply(address(options).endsWith("7001") ? "1" : "2") },
      {},
      serving({ "127.0.0.1:7001": "SERVING", "127.0.0.1:7002": "SERVING" }),
    );
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^127\.0\.0\.1:7001 is healthy: node 1, 2 groups, leads 1, took \d+\.\d ms$/);
    expect(lines[1]).toMatch(/^127\.0\.0\.1:7002 is healthy: node 2, 2 groups, leads 0, took \d+\.\d ms$/);
    const calls = result.calls.filter((call) => call.method === "admin");
    expect(calls.map((call) => [call.args[0], call.args[1], address(call.args[2])])).toEqual([
      ["Status", { localOnly: true }, "127.0.0.1:7001"],
      ["Status", { localOnly: true }, "127.0.0.1:7002"],
    ]);
    // Without the admin role the status is refused: the verdict still stands.
    const noAdmin = await run(
      [...E, "endpoint", "health"],
      { admin: async () => Promise.reject(new UnauthenticatedError("no token")) },
      {},
      serving({ "127.0.0.1:7001": "SERVING", "127.0.0.1:7002": "SERVING" }),
    );
    expect(noAdmin.code).toBe(0);
    expect(noAdmin.stdout).toMatch(/^127\.0\.0\.1:7001 is healthy: serving, took/);
  });

  it("exit 5 when one is down or not serving (with the groups that know no leader); 3 when none answers", async () => {
    const statusOk = {
      admin: async (_method: unknown, _request: unknown, options: unknown) => reply(address(options).endsWith("7001") ? "1" : "2"),
    };
    const oneDown = await run(
      [...E, "endpoint", "health"],
      statusOk,
      {},
      serving({ "127.0.0.1:7001": "SERVING", "127.0.0.1:7002": refused }),
    );
    expect(oneDown.code).toBe(5);
    expect(oneDown.stdout).toContain("127.0.0.1:7002 is unhealthy: connection refused\n");
    const noLeader = await run(
      [...E, "endpoint", "health"],
      { admin: async (_m, _r, options) => reply(address(options).endsWith("7001") ? "1" : "2", "") },
      {},
      serving({ "127.0.0.1:7001": "NOT_SERVING", "127.0.0.1:7002": "SERVING" }),
    );
    expect(noLeader.code).toBe(5);
    expect(noLeader.stdout).toContain(
      "127.0.0.1:7001 is unhealthy: NOT_SERVING: node 1 knows no leader for groups meta, 1 (an election, or no quorum reachable)\n",
    );
    const notReady = await run(
      [...E, "endpoint", "health"],
      statusOk,
      {},
      serving({ "127.0.0.1:7001": "NOT_SERVING", "127.0.0.1:7002": "SERVING" }),
    );
    expect(notReady.stdout).toMatch(/127\.0\.0\.1:7001 is unhealthy: NOT_SERVING: node 1 is not ready \(/);
    const none = await run(
      [...E, "-w", "json", "endpoint", "health"],
      { admin: async () => Promise.reject(refused) },
      {},
      serving({ "127.0.0.1:7001": refused, "127.0.0.1:7002": refused }),
    );
    expect(none.code).toBe(3);
    expect(JSON.parse(none.stdout).endpoints).toEqual([
      { endpoint: "127.0.0.1:7001", healthy: false, problem: "connection refused" },
      { endpoint: "127.0.0.1:7002", healthy: false, problem: "connection refused" },
    ]);
  });
});

describe("tallyctl global options: --config, -w, --version, http:// endpoints", () => {
  it("--config FILE: endpoints and TLS from that file, paths relative to it; --endpoints still wins for the endpoints", async () => {
    const other = join(cwd, "clusters", "other.yaml");
    await mkdir(join(cwd, "clusters"), { recursive: true });
    await writeFile(
      other,
      'nodes:\n  - { id: 1, client: "10.1.0.1:7001" }\n  - { id: 2, client: "http://10.1.0.2:7001" }\ntls:\n  ca: certs/ca.pem\n  client: { cert: certs/c.pem, key: certs/k.pem }\n',
    );
    await writeFile(join(cwd, "cluster.yaml"), 'nodes: [{ id: 1, client: "127.0.0.1:7001" }]\n');
    const fromFile = await run(["--config", "clusters/other.yaml", "get", "k"], {}, { TALLY_ENDPOINTS: "10.9.9.9:1" });
    expect(fromFile.code, fromFile.stderr).toBe(2); // http:// in a file with a tls section: a contradiction, said clearly
    expect(fromFile.stderr).toContain("http:// endpoints, but TLS is configured");
    await writeFile(
      other,
      'nodes:\n  - { id: 1, client: "10.1.0.1:7001" }\n  - { id: 2, client: "10.1.0.2:7001" }\ntls:\n  ca: certs/ca.pem\n  client: { cert: certs/c.pem, key: certs/k.pem }\n',
    );
    const ok = await run(["-c", "clusters/other.yaml", "get", "k"], {}, { TALLY_ENDPOINTS: "10.9.9.9:1" });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.clientOptions[0]).toMatchObject({
      endpoints: ["10.1.0.1:7001", "10.1.0.2:7001"],
      tls: {
        ca: join(cwd, "clusters", "certs", "ca.pem"),
        cert: join(cwd, "clusters", "certs", "c.pem"),
        key: join(cwd, "clusters", "certs", "k.pem"),
      },
    });
    const endpointsWin = await run(["--config", other, "--endpoints", "10.2.0.1:7001", "get", "k"]);
    expect(endpointsWin.clientOptions[0]).toMatchObject({
      endpoints: ["10.2.0.1:7001"],
      tls: { ca: join(cwd, "clusters", "certs", "ca.pem") },
    });
    const missing = await run(["--config", "nope.yaml", "get", "k"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`error: --config: ${join(cwd, "nope.yaml")} does not exist\n`);
  });

  it("http://host:port is host:port; https:// means TLS and needs the CA; other schemes and non-addresses are usage errors", async () => {
    const http = await run(["--endpoints", "http://127.0.0.1:7001/,HTTP://localhost:7002", "get", "k"]);
    expect(http.code, http.stderr).toBe(0);
    expect(http.clientOptions[0]?.endpoints).toEqual(["127.0.0.1:7001", "localhost:7002"]);
    expect(http.clientOptions[0]).not.toHaveProperty("tls");
    const https = await run(["--endpoints", "https://node1.example:7001", "--ca", "ca.pem", "get", "k"]);
    expect(https.code, https.stderr).toBe(0);
    expect(https.clientOptions[0]).toMatchObject({ endpoints: ["node1.example:7001"], tls: { ca: join(cwd, "ca.pem") } });
    for (const [endpoints, message] of [
      ["https://127.0.0.1:7001", "https:// endpoints need the cluster's CA"],
      ["http://127.0.0.1:7001,https://127.0.0.1:7002", "mix http:// and https://"],
      ["grpc://127.0.0.1:7001", "not grpc://"],
      ["127.0.0.1", 'endpoint "127.0.0.1" is not host:port'],
      ["127.0.0.1:99999", "is not host:port"],
      ["http://127.0.0.1:7001/v1", "is not host:port after http://"],
    ] as const) {
      const result = await run(["--endpoints", endpoints, "get", "k"]);
      expect(result.code, endpoints).toBe(2);
      expect(result.stderr, endpoints).toContain(message);
      expect(result.calls, endpoints).toEqual([]);
    }
  });

  it("-w json is --json; -w table is the default; anything else is a usage error", async () => {
    const json = await run([...E, "-w", "json", "get", "hits"]);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse((await run([...E, "--json", "get", "hits"])).stdout) as object);
    expect((await run([...E, "--write-out", "table", "get", "hits"])).stdout).toBe("hits = -5  (version 7, fence 3/42, applied 50)\n");
    const routes = await run([...E, "routes", "-w", "json"]);
    expect(JSON.parse(routes.stdout).shards[0].shardId).toBe(1);
    const bad = await run([...E, "-w", "yaml", "get", "hits"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('-w must be table or json, got "yaml"');
  });

  it("restore takes the new cluster's file from the global --config, and never guesses it", async () => {
    const result = await run(["restore", join(cwd, "backup")]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("error: restore needs --config FILE: the cluster.yaml of the new cluster\n");
  });

  it("--version prints the package version and Node's, exit 0", async () => {
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) {
      const result = await run([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`tallyctl ${pkg.version} (node ${process.version})\n`);
    }
  });
});
