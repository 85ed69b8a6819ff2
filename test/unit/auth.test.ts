/**
 * Access control policy (src/server/config/auth.ts, src/server/rpc/auth-gate.ts) without a server: the auth section of cluster.yaml,
 * token hashing, authentication from call metadata, prefix and role matching, batches that are
 * refused whole, and the Pipeline's per-op error frames. Requests are real protobuf messages
 * (encoded and decoded with tally.proto), so the keys the policy reads are the keys the server
 * decodes.
 */
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tallyProto, type PipelineRequestMessage } from "../../src/api/proto.js";
import { encodePackedAddsField } from "../../src/api/packed-batch.js";
import { runCli } from "../../src/cli/cli.js";
import { resolveToken } from "../../src/cli/auth.js";
import { TallyClient } from "../../src/client/index.js";
import { Authorizer, authorizerFor, type Access, type Principal } from "../../src/server/config/auth.js";
import { AuthGate, adminAccess, counterAccess } from "../../src/server/rpc/auth-gate.js";
import { ConfigError, parseClusterConfig, type AuthSettings } from "../../src/server/config/config.js";
import { generateToken, tokenSha256Hex } from "../../src/util/auth-token.js";
import { PermissionDeniedError, UnauthenticatedError } from "../../src/util/errors.js";
import { componentLogger } from "../../src/util/log.js";

const node = (id: number) => ({
  id,
  client: `127.0.0.1:${7000 + id}`,
  peer: `127.0.0.1:${7100 + id}`,
  dataDir: `/tmp/tally-auth-test/n${id}`,
});
const base = (auth: unknown) => ({ cluster: { replicationFactor: 1, shards: 1 }, nodes: [node(1)], auth });

const readerToken = generateToken();
const writerToken = generateToken();
const adminToken = generateToken();
const internalToken = generateToken();

const settings: AuthSettings = {
  tokens: [
    { name: "reader", sha256: tokenSha256Hex(readerToken), grants: [{ prefix: "", roles: ["read"] }] },
    {
      name: "pages",
      sha256: tokenSha256Hex(writerToken),
      grants: [
        { prefix: "page:", roles: ["read", "write"] },
        { prefix: "stats:", roles: ["read"] },
      ],
    },
    { name: "ops", sha256: tokenSha256Hex(adminToken), grants: [{ prefix: "", roles: ["admin"] }] },
  ],
  certificates: [],
};
const authorizer = new Authorizer(settings, false, internalToken);

function bearer(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

const principal = (token: string): Principal => authorizer.authenticate(bearer(token), undefined);
const bytes = (text: string) => Buffer.from(text, "utf8");

/** A request as the server sees it: encoded with tally.proto and decoded again. */
function decoded(method: string, message: object): Record<string, any> {
  const service = tallyProto().packageDefinition["tally.v1.CounterService"] as unknown as Record<
    string,
    { requestSerialize(value: object): Buffer; requestDeserialize(bytes: Buffer): any }
  >;
  const definition = service[method]!;
  return definition.requestDeserialize(definition.requestSerialize(message));
}

function denial(who: Principal, access: Access): unknown {
  try {
    authorizer.authorize(who, access, "test");
    return undefined;
  } catch (error) {
    return error;
  }
}

describe("cluster.yaml auth section", () => {
  test("parses tokens, grants and the internal token file; absent = off", () => {
    const hash = tokenSha256Hex("x".repeat(40));
    const config = parseClusterConfig(
      base({
        internalTokenFile: "secrets/internal",
        tokens: [
          { name: "web", sha256: hash.toUpperCase(), grants: [{ prefix: "page:", roles: ["read", "write"] }, { roles: ["admin"] }] },
        ],
      }),
      "/etc/tally/cluster.yaml",
    );
    expect(config.auth).toEqual({
      internalTokenFile: "/etc/tally/secrets/internal",
      tokens: [
        {
          name: "web",
          sha256: hash,
          grants: [
            { prefix: "page:", roles: ["read", "write"] },
            { prefix: "", roles: ["admin"] },
          ],
        },
      ],
      certificates: [],
    });
    expect(parseClusterConfig(base(undefined)).auth).toBeUndefined();
  });

  test("bad sections are refused with the field named", () => {
    const hash = tokenSha256Hex("y".repeat(40));
    const token = (extra: Record<string, unknown> = {}) => ({
      name: "web",
      sha256: hash,
      grants: [{ prefix: "", roles: ["read"] }],
      ...extra,
    });
    const rejects = (auth: unknown, fragment: string) => {
      expect(() => parseClusterConfig(base(auth), "/c.yaml")).toThrow(ConfigError);
      expect(() => parseClusterConfig(base(auth), "/c.yaml")).toThrow(fragment);
    };
    rejects({ internalTokenFile: "i", tokens: [token({ sha256: "tly_rawsecret" })] }, "auth.tokens[0].sha256 must be the token's SHA-256");
    rejects(
      { internalTokenFile: "i", tokens: [token({ grants: [{ prefix: "page:", roles: ["admin"] }] })] },
      'admin is cluster-wide; grant it with prefix ""',
    );
    rejects({ internalTokenFile: "i", tokens: [token({ grants: [{ prefix: "", roles: ["root"] }] })] }, 'unknown role "root"');
    rejects({ internalTokenFile: "i", tokens: [token({ grants: [] })] }, "auth.tokens[0].grants must be a non-empty list");
    rejects({ internalTokenFile: "i", tokens: [token(), token({ sha256: tokenSha256Hex("other-token-text") })] }, '"web" is used twice');
    rejects({ internalTokenFile: "i", tokens: [token(), token({ name: "web2" })] }, "the same token is listed twice");
    rejects({ internalTokenFile: "i", tokens: [] }, "needs at least one entry in tokens or certificates");
    rejects({ tokens: [token()] }, "auth.internalTokenFile is required");
    rejects(
      { internalTokenFile: "i", tokens: [token()], certificates: [{ name: "svc", identity: "svc", grants: [{ roles: ["read"] }] }] },
      "certificate identities need tls.clientAuth: require",
    );
    rejects({ internalTokenFile: "i", tokens: [token({ secret: "x" })] }, 'unknown field "secret"');
  });
});

describe("tokens", () => {
  test("SHA-256 of the token's UTF-8 bytes, as sha256sum prints it; fresh tokens differ", () => {
    expect(tokenSha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const token = generateToken();
    expect(token).toMatch(/^tly_[A-Za-z0-9_-]{43}$/);
    expect(tokenSha256Hex(token)).toBe(createHash("sha256").update(token).digest("hex"));
    expect(generateToken()).not.toBe(token);
  });

  test("tallyctl auth hash-token prints a token and its hash", async () => {
    const out: string[] = [];
    const code = await runCli(["--json", "auth", "hash-token"], {
      stdout: (text) => out.push(text),
      stderr: (text) => out.push(text),
      cwd: process.cwd(),
      env: {},
      createClient: () => {
        throw new Error("hash-token needs no cluster");
      },
    });
    expect(code).toBe(0);
    const { token, sha256 } = JSON.parse(out.join("")) as { token: string; sha256: string };
    expect(sha256).toBe(tokenSha256Hex(token));
  });

  test("tallyctl takes --token, then --token-file, then $TALLY_TOKEN; a bad one is refused without echoing it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-auth-"));
    try {
      writeFileSync(join(dir, "t"), "tly_fromfile\n");
      expect(await resolveToken({ token: "tly_flag" }, { TALLY_TOKEN: "tly_env" }, dir)).toBe("tly_flag");
      expect(await resolveToken({ tokenFile: "t" }, { TALLY_TOKEN: "tly_env" }, dir)).toBe("tly_fromfile");
      expect(await resolveToken({}, { TALLY_TOKEN: "tly_env" }, dir)).toBe("tly_env");
      expect(await resolveToken({}, {}, dir)).toBeUndefined();
      await expect(resolveToken({ token: "two words" }, {}, dir)).rejects.toThrow(/^--token: a token is one word/);
      await expect(resolveToken({ token: "a", tokenFile: "t" }, {}, dir)).rejects.toThrow("exclude each other");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the client refuses a malformed token without echoing it", () => {
    expect(() => new TallyClient({ endpoints: ["127.0.0.1:1"], token: "secret with spaces" })).toThrow(/^token must be/);
    try {
      new TallyClient({ endpoints: ["127.0.0.1:1"], token: "secret with spaces" });
    } catch (error) {
      expect((error as Error).message).not.toContain("secret");
    }
  });
});

describe("authentication", () => {
  test("a known token is its named principal; the internal token is a node", () => {
    expect(principal(readerToken)).toMatchObject({ name: "reader", internal: false });
    expect(principal(adminToken)).toMatchObject({ name: "ops", internal: false });
    expect(principal(internalToken)).toMatchObject({ name: "internal", internal: true });
    const lower = new grpc.Metadata();
    lower.set("authorization", `bearer ${writerToken}`);
    expect(authorizer.authenticate(lower, undefined).name).toBe("pages");
  });

  test("no, malformed, unknown or doubled credentials are UNAUTHENTICATED, and the message never holds the token", () => {
    const attempt = (metadata: grpc.Metadata) => {
      try {
        authorizer.authenticate(metadata, undefined);
      } catch (error) {
        return error as Error;
      }
      throw new Error("authenticated");
    };
    expect(attempt(new grpc.Metadata())).toBeInstanceOf(UnauthenticatedError);
    expect(attempt(new grpc.Metadata()).message).toMatch(/no credentials/);
    const unknown = generateToken();
    const error = attempt(bearer(unknown));
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error.message).toBe("unknown token");
    const basic = new grpc.Metadata();
    basic.set("authorization", `Basic ${readerToken}`);
    expect(attempt(basic).message).not.toContain(readerToken);
    expect(attempt(basic)).toBeInstanceOf(UnauthenticatedError);
    const twice = bearer(readerToken);
    twice.add("authorization", `Bearer ${adminToken}`);
    expect(attempt(twice).message).toMatch(/more than one/);
    // A token that differs in one character from a real one is just unknown.
    expect(attempt(bearer(`${readerToken.slice(0, -1)}${readerToken.endsWith("A") ? "B" : "A"}`)).message).toBe("unknown token");
  });

  test("client certificates count only where they are verified (clientAuth: require)", () => {
    const withCertificates = new Authorizer(
      { ...settings, certificates: [{ name: "billing", identity: "billing.internal", grants: [{ prefix: "bill:", roles: ["write"] }] }] },
      true,
      undefined,
    );
    const certificate = (cn: string, san = "") => ({ subject: { CN: cn }, subjectaltname: san }) as never;
    expect(withCertificates.authenticate(new grpc.Metadata(), certificate("x", "DNS:billing.internal")).name).toBe("billing");
    expect(withCertificates.authenticate(new grpc.Metadata(), certificate("billing.internal")).name).toBe("billing");
    expect(withCertificates.authenticate(new grpc.Metadata(), certificate("tally-node-2", "URI:tally://node/2"))).toMatchObject({
      name: "node-2",
      internal: true,
    });
    expect(() => withCertificates.authenticate(new grpc.Metadata(), certificate("stranger"))).toThrow(UnauthenticatedError);
    // The token wins over the certificate.
    expect(withCertificates.authenticate(bearer(readerToken), certificate("billing.internal")).name).toBe("reader");
    // Without verification a presented certificate is ignored.
    expect(() => authorizer.authenticate(new grpc.Metadata(), certificate("tally-node-2", "URI:tally://node/2"))).toThrow(
      UnauthenticatedError,
    );
  });

  test("the internal token file is read once at start; an unreadable or short one is a config error", () => {
    const dir = mkdtempSync(join(tmpdir(), "tally-auth-"));
    try {
      const document = (file: string) =>
        base({ internalTokenFile: file, tokens: [{ name: "r", sha256: tokenSha256Hex(readerToken), grants: [{ roles: ["read"] }] }] });
      writeFileSync(join(dir, "good"), `${internalToken}\n`);
      const config = parseClusterConfig(document("good"), join(dir, "cluster.yaml"));
      expect(authorizerFor(config)?.internalToken).toBe(internalToken);
      expect(authorizerFor(config)?.internalMetadata()?.get("authorization")).toEqual([`Bearer ${internalToken}`]);
      writeFileSync(join(dir, "short"), "tly_short\n");
      expect(() => authorizerFor(parseClusterConfig(document("short"), join(dir, "cluster.yaml")))).toThrow(
        /at least 32 printable characters/,
      );
      expect(() => authorizerFor(parseClusterConfig(document("missing"), join(dir, "cluster.yaml")))).toThrow(
        /auth.internalTokenFile: cannot read/,
      );
      expect(authorizerFor(parseClusterConfig(base(undefined)))).toBeUndefined();
      writeFileSync(join(dir, "shared"), `${readerToken}\n`);
      expect(() => authorizerFor(parseClusterConfig(document("shared"), join(dir, "cluster.yaml")))).toThrow(/also in auth.tokens/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("authorization", () => {
  const reader = principal(readerToken);
  const pages = principal(writerToken);
  const ops = principal(adminToken);
  const internal = principal(internalToken);

  test("keys under \\0tally: are written by nodes only, whatever the grants; anyone with read may read them", () => {
    const allToken = generateToken();
    const everything = new Authorizer(
      { tokens: [{ name: "all", sha256: tokenSha256Hex(allToken), grants: [{ prefix: "", roles: ["read", "write"] }] }], certificates: [] },
      false,
      internalToken,
    );
    const all = everything.authenticate(bearer(allToken), undefined);
    const node = everything.authenticate(bearer(internalToken), undefined);
    const marker = Buffer.from("\0tally:eventual:node-1:{7}", "latin1");
    const attempt = (who: Principal, role: "read" | "write", keys: Uint8Array[]): unknown => {
      try {
        everything.authorize(who, { kind: "keys", role, keys, batch: true }, "test");
        return undefined;
      } catch (error) {
        return error;
      }
    };
    const refused = attempt(all, "write", [bytes("page:a"), marker]) as PermissionDeniedError & { opIndex?: number };
    expect(refused).toBeInstanceOf(PermissionDeniedError);
    expect(refused.message).toContain("reserved for the cluster's own use");
    expect(refused.opIndex).toBe(1);
    expect(attempt(all, "write", [bytes("page:a"), Buffer.from("\0tallyx", "latin1")])).toBeUndefined();
    expect(attempt(all, "read", [marker])).toBeUndefined();
    expect(attempt(node, "write", [marker])).toBeUndefined();
  });

  test("a grant covers the keys that start with its prefix, byte for byte", () => {
    const write = (key: string): Access => ({ kind: "keys", role: "write", keys: [bytes(key)] });
    expect(denial(pages, write("page:home"))).toBeUndefined();
    expect(denial(pages, write("page:"))).toBeUndefined();
    expect(denial(pages, write("page"))).toBeInstanceOf(PermissionDeniedError);
    expect(denial(pages, write("Page:home"))).toBeInstanceOf(PermissionDeniedError);
    expect(denial(pages, write("stats:x"))).toBeInstanceOf(PermissionDeniedError); // read only there
    expect(denial(pages, { kind: "keys", role: "read", keys: [bytes("stats:x")] })).toBeUndefined();
    expect(denial(pages, { kind: "keys", role: "write", keys: [Buffer.from([0x70, 0x61, 0x67, 0x65, 0x3a, 0xff])] })).toBeUndefined();
    expect((denial(pages, write("orders:1")) as Error).message).toBe(
      'caller "pages" has no write role on key "orders:1" (test); nothing was applied',
    );
  });

  test("roles do not imply each other: read cannot write, admin cannot read counters", () => {
    expect(denial(reader, { kind: "keys", role: "read", keys: [bytes("anything")] })).toBeUndefined();
    expect(denial(reader, { kind: "keys", role: "write", keys: [bytes("anything")] })).toBeInstanceOf(PermissionDeniedError);
    expect(denial(ops, { kind: "keys", role: "read", keys: [bytes("anything")] })).toBeInstanceOf(PermissionDeniedError);
    expect(denial(ops, { kind: "admin" })).toBeUndefined();
    expect(denial(reader, { kind: "admin" })).toBeInstanceOf(PermissionDeniedError);
    expect(denial(pages, { kind: "admin" })).toBeInstanceOf(PermissionDeniedError);
  });

  test("a batch needs the role on every op's key: one forbidden op refuses the whole batch and is named", () => {
    const request = decoded("AddBatch", {
      header: { shardId: 1 },
      ops: [
        { add: { key: bytes("page:a"), delta: 1 } },
        { windowAdd: { key: bytes("page:b"), delta: 1 } },
        { uniqueAdd: { key: bytes("orders:1"), items: [bytes("x")] } },
        { reset: { key: bytes("page:c") } },
      ],
    });
    const access = counterAccess("addBatch", request);
    expect(access).toMatchObject({ kind: "keys", role: "write", batch: true });
    expect((access as Extract<Access, { kind: "keys" }>).keys.map((k) => Buffer.from(k).toString())).toEqual([
      "page:a",
      "page:b",
      "orders:1",
      "page:c",
    ]);
    const error = denial(pages, access) as PermissionDeniedError & { opIndex?: number };
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error.message).toContain('ops[2] key "orders:1"');
    expect(error.opIndex).toBe(2);
    const allowed = decoded("AddBatch", {
      header: { shardId: 1 },
      ops: [{ add: { key: bytes("page:a"), delta: 1 } }, { tryAcquire: { key: bytes("page:rl"), n: 1, limit: 5, windowMs: 1000 } }],
    });
    expect(denial(pages, counterAccess("addBatch", allowed))).toBeUndefined();
  });

  test("a packed batch (packed_adds) needs the role on every key inside the bytes; malformed bytes need an unscoped grant", () => {
    const packed = (...keys: string[]) =>
      decoded("AddBatch", {
        header: { shardId: 1 },
        packedAdds: encodePackedAddsField(keys.map((key) => ({ key: bytes(key), delta: 1n }))),
      });
    expect(denial(pages, counterAccess("addBatch", packed("page:a", "page:b")))).toBeUndefined();
    const error = denial(pages, counterAccess("addBatch", packed("page:a", "orders:1", "page:c"))) as PermissionDeniedError & {
      opIndex?: number;
    };
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error.message).toContain('ops[1] key "orders:1"');
    expect(error.opIndex).toBe(1);
    const good = encodePackedAddsField([{ key: bytes("page:a"), delta: 1n }]);
    for (const broken of [
      Buffer.concat([good, Buffer.from([0, 9, 1])]),
      Buffer.concat([good, Buffer.from([0, 0, 1, 2, 3, 4, 5, 6, 7, 8])]),
    ]) {
      expect(denial(pages, counterAccess("addBatch", decoded("AddBatch", { header: { shardId: 1 }, packedAdds: broken })))).toBeInstanceOf(
        PermissionDeniedError,
      );
    }
  });

  test("every op kind's key is found: an op without one needs an unscoped grant", () => {
    const empty = decoded("AddBatch", { header: { shardId: 1 }, ops: [{}] });
    expect(denial(pages, counterAccess("addBatch", empty))).toBeInstanceOf(PermissionDeniedError);
    for (const [method, message] of [
      ["Add", { key: bytes("orders:1"), delta: 1 }],
      ["Set", { key: bytes("orders:1"), value: 1 }],
      ["Reset", { key: bytes("orders:1") }],
      ["CompareAndSet", { key: bytes("orders:1"), value: 1 }],
    ] as const) {
      const name = method.charAt(0).toLowerCase() + method.slice(1);
      expect(denial(pages, counterAccess(name, decoded(method, message)))).toBeInstanceOf(PermissionDeniedError);
      expect(denial(pages, counterAccess(name, decoded(method, { ...message, key: bytes("page:1") })))).toBeUndefined();
    }
  });

  test("reads: every key of getMany and uniqueCount; a prefix read needs a grant covering the whole prefix", () => {
    expect(denial(pages, counterAccess("getMany", decoded("GetMany", { keys: [bytes("page:a"), bytes("stats:b")] })))).toBeUndefined();
    expect(denial(pages, counterAccess("getMany", decoded("GetMany", { keys: [bytes("page:a"), bytes("orders:b")] })))).toBeInstanceOf(
      PermissionDeniedError,
    );
    expect(denial(pages, counterAccess("uniqueCount", decoded("UniqueCount", { keys: [bytes("orders:b")] })))).toBeInstanceOf(
      PermissionDeniedError,
    );
    expect(denial(pages, counterAccess("topK", decoded("TopK", { prefix: bytes("page:top"), k: 3 })))).toBeUndefined();
    expect(denial(pages, counterAccess("topK", decoded("TopK", { prefix: bytes("page"), k: 3 })))).toBeInstanceOf(PermissionDeniedError);
    expect(denial(pages, counterAccess("aggregate", decoded("Aggregate", {})))).toBeInstanceOf(PermissionDeniedError);
    expect(denial(reader, counterAccess("aggregate", decoded("Aggregate", {})))).toBeUndefined();
    expect(denial(pages, counterAccess("watch", decoded("Watch", { key: bytes("page:"), prefix: true })))).toBeUndefined();
    expect(denial(pages, counterAccess("watch", decoded("Watch", { key: bytes("pa"), prefix: true })))).toBeInstanceOf(
      PermissionDeniedError,
    );
    expect(denial(pages, counterAccess("windowRange", decoded("WindowRange", { key: bytes("orders:w") })))).toBeInstanceOf(
      PermissionDeniedError,
    );
  });

  test("sessions need write somewhere; the routing map needs any data role; unknown methods need admin", () => {
    expect(denial(pages, counterAccess("registerSession", {}))).toBeUndefined();
    expect(denial(reader, counterAccess("registerSession", {}))).toBeInstanceOf(PermissionDeniedError);
    expect(denial(reader, counterAccess("keepAlive", {}))).toBeInstanceOf(PermissionDeniedError);
    expect(denial(reader, counterAccess("routes", {}))).toBeUndefined();
    expect(denial(ops, counterAccess("routes", {}))).toBeInstanceOf(PermissionDeniedError);
    expect(counterAccess("someNewRpc", {})).toEqual({ kind: "admin" });
  });

  test("admin RPCs need admin; heartbeats, shard changes and forwarded writes only the cluster's own nodes", () => {
    for (const method of ["status", "shardMove", "transferLeader", "recoverUnsafe", "someNewAdminRpc"]) {
      expect(denial(ops, adminAccess(method))).toBeUndefined();
      expect(denial(reader, adminAccess(method))).toBeInstanceOf(PermissionDeniedError);
    }
    for (const method of ["heartbeat", "shardChange", "forwardWrite"]) {
      expect(denial(internal, adminAccess(method))).toBeUndefined();
      expect(denial(ops, adminAccess(method))).toBeInstanceOf(PermissionDeniedError);
    }
    expect(denial(internal, adminAccess("status"))).toBeUndefined();
    // A node flushes the eventual adds it buffered as itself (docs/eventual.md): it reads and writes keys.
    expect(denial(internal, { kind: "keys", role: "read", keys: [bytes("page:a")] })).toBeUndefined();
    expect(denial(internal, { kind: "keys", role: "write", keys: [bytes("page:a")], batch: true })).toBeUndefined();
    expect(denial(reader, { kind: "keys", role: "write", keys: [bytes("page:a")] })).toBeInstanceOf(PermissionDeniedError);
  });
});

describe("pipeline frames", () => {
  const gate = new AuthGate(authorizer, componentLogger("auth-test"));
  /** A frame as a client may send it: only some fields, or an op this node does not know. */
  const asFrame = (fields: Record<string, unknown>) => fields as unknown as PipelineRequestMessage;
  const stream = (metadata: grpc.Metadata) =>
    ({ metadata, getAuthContext: () => ({}), getPeer: () => "test" }) as unknown as grpc.ServerDuplexStream<
      Record<string, any>,
      Record<string, any>
    >;

  test("each op is checked on its own: a denied op is an error frame with its id, the rest pass", () => {
    const caller = gate.pipelineCaller(stream(bearer(writerToken)));
    expect(gate.pipelineDenial(caller, asFrame({ id: "7", op: "add", add: { key: bytes("page:a"), delta: "1" } }))).toBeUndefined();
    const frame = gate.pipelineDenial(caller, asFrame({ id: "8", op: "add", add: { key: bytes("orders:a"), delta: "1" } }));
    expect(frame).toMatchObject({ id: "8", error: { code: "PERMISSION_DENIED" } });
    const batch = gate.pipelineDenial(
      caller,
      asFrame({
        id: "9",
        op: "batch",
        batch: {
          ops: [
            { op: "add", add: { key: bytes("page:a") } },
            { op: "set", set: { key: bytes("x") } },
          ],
        },
      }),
    );
    expect(batch).toMatchObject({ id: "9", error: { code: "PERMISSION_DENIED", hasOpIndex: true, opIndex: 1 } });
    expect(gate.pipelineDenial(caller, asFrame({ id: "10", op: "hotAdd", hotAdd: { key: bytes("page:a") } }))).toMatchObject({
      error: { code: "PERMISSION_DENIED" },
    });
    expect(gate.pipelineDenial(caller, asFrame({ id: "11" }))).toBeUndefined(); // no op: the handler refuses it
  });

  test("a stream without credentials gets UNAUTHENTICATED for every op", () => {
    const caller = gate.pipelineCaller(stream(new grpc.Metadata()));
    expect(gate.pipelineDenial(caller, asFrame({ id: "1", op: "get", get: { key: bytes("page:a") } }))).toMatchObject({
      id: "1",
      error: { code: "UNAUTHENTICATED" },
    });
  });
});

describe("the guard", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tally-auth-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a denied unary call never reaches its handler; an allowed one does", async () => {
    const gate = new AuthGate(authorizer, componentLogger("auth-test"));
    const definition = tallyProto().CounterService.service;
    let reached = 0;
    const guarded = gate.guard(
      definition,
      { add: (_call: unknown, callback: grpc.sendUnaryData<object>) => (reached++, callback(null, {})) },
      counterAccess,
    );
    const call = (token: string | undefined, key: string) =>
      new Promise<grpc.ServiceError | null>((resolve) =>
        (guarded.add as grpc.handleUnaryCall<object, object>)(
          {
            metadata: token ? bearer(token) : new grpc.Metadata(),
            request: { key: bytes(key) },
            getAuthContext: () => ({}),
            getPeer: () => "test",
          } as never,
          (error) => resolve(error as grpc.ServiceError | null),
        ),
      );
    expect((await call(undefined, "page:a"))?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await call(readerToken, "page:a"))?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(reached).toBe(0);
    expect(await call(writerToken, "page:a")).toBeNull();
    expect(reached).toBe(1);
  });
});
