import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, type CliClient, type CliIo } from "../../src/cli/cli.js";
import { AmbiguousOperationError, ClusterUnreachableError } from "../../src/client/errors.js";
import type { ClusterStatus, MutationResult, ReadResult, RoutesSnapshot, TallyClientOptions } from "../../src/client/index.js";
import { OutOfRangeError, VersionMismatchError } from "../../src/util/errors.js";

const fence = { term: 3n, index: 42n };
const mutation: MutationResult = { value: 9223372036854775807n, version: 42n, fence };

interface Recorded {
  method: string;
  args: unknown[];
}

/** A CliClient that records calls and answers from a script. */
function fakeClient(recorded: Recorded[], behaviour: Partial<Record<keyof CliClient, (...args: unknown[]) => Promise<unknown>>> = {}): CliClient {
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
      reachable: true,
      error: "",
      groups: [{ groupId: 1, role: "FOLLOWER", term: 4n, leaderId: "1", commit: 120n, applied: 118n, lastIndex: 120n, leaseValid: false, epoch: 1n, peers: [] }],
    },
    {
      nodeId: "1",
      clientAddress: "127.0.0.1:7001",
      zone: "z1",
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
    { nodeId: "3", clientAddress: "127.0.0.1:7003", zone: "z3", reachable: false, error: "connection refused", groups: [] },
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
      expect(result.calls.filter((c) => c.method !== "close"), argv.join(" ")).toEqual([]);
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
    expect((await run(["--endpoints", "h:2", "get", "k"], {}, { TALLY_ENDPOINTS: "10.0.0.1:1" })).clientOptions[0]?.endpoints).toEqual(["h:2"]);
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
    expect(result.stderr).toContain("AMBIGUOUS: add on \"k\" (delta 5)");
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
    expect(JSON.parse(mismatch.stdout)).toEqual({ error: { code: "VERSION_MISMATCH", message: "VERSION_MISMATCH: version is 4", exitCode: 1 } });
  });
});

describe("tallyctl output", () => {
  it("prints results on one line, or as JSON with 64-bit integers as strings", async () => {
    expect((await run([...E, "add", "hits", "2"])).stdout).toBe("hits = 9223372036854775807  (version 42, fence 3/42)\n");
    expect((await run([...E, "get", "hits"])).stdout).toBe("hits = -5  (version 7, fence 3/42, applied 50)\n");
    const missing = await run([...E, "get", "nope"], { get: async () => ({ value: 0n, version: 0n, exists: false, fence, appliedIndex: 50n }) });
    expect(missing.stdout).toBe("nope = 0  (does not exist; applied 50)\n");
    const json = await run([...E, "--json", "add", "hits", "2"]);
    expect(JSON.parse(json.stdout)).toEqual({ key: "hits", value: "9223372036854775807", version: "42", fence: { term: "3", index: "42" } });
    const read = await run([...E, "get", "hits", "--json"]);
    expect(JSON.parse(read.stdout)).toEqual({ key: "hits", value: "-5", version: "7", exists: true, fence: { term: "3", index: "42" }, appliedIndex: "50" });
  });

  it("status: one aligned row per node and group, sorted, unreachable nodes shown", async () => {
    const result = await run([...E, "status"]);
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(/^NODE\s+ADDRESS\s+ZONE\s+GROUP\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAG\s+LEASE$/);
    expect(lines[1]).toMatch(/^1\s+127\.0\.0\.1:7001\s+z1\s+1\s+leader\s+4\s+1\s+120\s+120\s+21\s+valid$/);
    expect(lines[2]).toMatch(/^2\s+127\.0\.0\.1:7002\s+z2\s+1\s+follower\s+4\s+1\s+120\s+118\s+-\s+-$/);
    expect(lines[3]).toMatch(/^3\s+127\.0\.0\.1:7003\s+z3\s+-\s+unreachable$/);
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
