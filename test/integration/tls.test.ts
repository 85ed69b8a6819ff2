/**
 * TLS and mTLS against real tallyd processes (certificates from scripts/gen-certs.ts, openssl):
 * a client with the CA and a client certificate is served; plaintext clients, clients without a
 * certificate and clients with a certificate from another CA are refused; a node whose
 * certificate names another node id is cut off while the rest keep serving, and its frames are
 * refused; replaced certificate files are used for new connections after SIGHUP.
 */
import * as grpc from "@grpc/grpc-js";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:tls";
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TallyClient, type ClientTlsOptions } from "../../src/client/index.js";
import { encodeFrame } from "../../src/transport/codec.js";
import { message } from "../support/peer-messages.js";
import { createCa, issueClientCertificate, issueNodeCertificate, type CertificatePair } from "../../scripts/gen-certs.js";
import { eventually, TestCluster } from "../support/cluster.js";
import { RawBytesClient, peerMethodCodecs, tallyMethodCodecs } from "../fuzz/wire.js";
import { runNodeProcess } from "../support/run-process.js";

const root = join(import.meta.dirname, "..", "..");

describe("TLS cluster", () => {
  let cluster: TestCluster;
  let certs: string;
  let ca: CertificatePair;
  let goodTls: ClientTlsOptions;
  const clients: TallyClient[] = [];

  beforeAll(async () => {
    cluster = await TestCluster.start({ nodes: 3, shards: 1, tls: { clientAuth: "require", reloadSeconds: 3600 } });
    certs = join(cluster.dir, "certs");
    ca = { cert: join(certs, "ca.pem"), key: join(certs, "ca-key.pem") };
    goodTls = { ca: ca.cert, cert: join(certs, "client.pem"), key: join(certs, "client-key.pem") };
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await cluster?.destroy();
  });

  function client(tls: ClientTlsOptions | undefined, deadlineMs = 10_000, endpoints = cluster.endpoints()): TallyClient {
    const created = new TallyClient({ endpoints, deadlineMs, connectTimeoutMs: 1000, attemptTimeoutMs: 1000, ...(tls ? { tls } : {}) });
    clients.push(created);
    return created;
  }

  async function rawStatus(address: string, credentials: grpc.ChannelCredentials): Promise<number> {
    const status = tallyMethodCodecs().get("Status")!;
    const raw = new RawBytesClient(address, credentials);
    try {
      return (await raw.unary(status.path, status.encode({ localOnly: true }), 3000)).code;
    } finally {
      raw.close();
    }
  }

  /** The serial number of the certificate a node presents on a NEW TLS connection. */
  function presentedSerial(address: string, identity: CertificatePair): Promise<string> {
    const port = Number(address.slice(address.lastIndexOf(":") + 1));
    return new Promise((resolve, reject) => {
      const socket = connect(
        {
          host: "127.0.0.1",
          port,
          servername: "localhost",
          ca: readFileSync(ca.cert),
          cert: readFileSync(identity.cert),
          key: readFileSync(identity.key),
          ALPNProtocols: ["h2"],
        },
        () => {
          const serial = socket.getPeerCertificate().serialNumber;
          socket.destroy();
          resolve(serial);
        },
      );
      socket.setTimeout(5000, () => socket.destroy(new Error("TLS handshake timed out")));
      socket.on("error", reject);
    });
  }

  function serialOf(path: string): string {
    return new X509Certificate(readFileSync(path)).serialNumber;
  }

  it("serves adds and gets to a client with the CA and a client certificate", async () => {
    const tally = client(goodTls);
    await tally.add("tls:a", 5n);
    const result = await tally.add("tls:a", 2n);
    expect(result.value).toBe(7n);
    expect((await tally.get("tls:a")).value).toBe(7n);
  });

  it("refuses plaintext clients, clients without a certificate and certificates from another CA", async () => {
    const address = cluster.endpoints()[0]!;
    expect(await rawStatus(address, grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
    expect(await rawStatus(address, grpc.credentials.createSsl(readFileSync(ca.cert)))).toBe(grpc.status.UNAVAILABLE);
    const other = createCa(join(cluster.dir, "other"), "ca", "another CA");
    const foreign = issueClientCertificate(other, join(cluster.dir, "other"));
    const foreignCredentials = grpc.credentials.createSsl(readFileSync(ca.cert), readFileSync(foreign.key), readFileSync(foreign.cert));
    expect(await rawStatus(address, foreignCredentials)).toBe(grpc.status.UNAVAILABLE);
    // Control: the same call with the cluster's client certificate is served.
    expect(
      await rawStatus(
        address,
        grpc.credentials.createSsl(
          readFileSync(ca.cert),
          readFileSync(join(certs, "client-key.pem")),
          readFileSync(join(certs, "client.pem")),
        ),
      ),
    ).toBe(grpc.status.OK);
    await expect(client(undefined, 2000).get("tls:a")).rejects.toThrow();
    await expect(client({ ca: ca.cert, cert: foreign.cert, key: foreign.key }, 2000).get("tls:a")).rejects.toThrow();
    await expect(client({ ca: other.cert, ...{ cert: goodTls.cert, key: goodTls.key } }, 2000).get("tls:a")).rejects.toThrow();
  });

  it("tallyctl: TLS defaults from cluster.yaml's tls section, or --ca/--cert/--key", async () => {
    const tallyctl = (args: string[]) =>
      runNodeProcess([join(root, "bin", "tallyctl.js"), ...args], {
        cwd: cluster.dir,
        env: { ...process.env, TALLY_ENDPOINTS: "" },
        deadlineMs: 30_000,
      });
    const fromFile = await tallyctl(["add", "tls:ctl", "4", "--json"]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(JSON.parse(fromFile.stdout).value).toBe("4");
    const endpoints = cluster.endpoints().join(",");
    const withFlags = await tallyctl([
      "get",
      "tls:ctl",
      "--json",
      "--endpoints",
      endpoints,
      "--ca",
      "certs/ca.pem",
      "--cert",
      "certs/client.pem",
      "--key",
      "certs/client-key.pem",
    ]);
    expect(withFlags.code, withFlags.stderr).toBe(0);
    expect(JSON.parse(withFlags.stdout).value).toBe("4");
    // --endpoints without --ca: plaintext, which the cluster refuses (exit 3: unreachable).
    const plain = await tallyctl(["get", "tls:ctl", "--endpoints", endpoints, "--timeout", "1500"]);
    expect(plain.code).toBe(3);
    const keyless = await tallyctl(["get", "tls:ctl", "--endpoints", endpoints, "--ca", "certs/ca.pem", "--cert", "certs/client.pem"]);
    expect(keyless.code).toBe(2);
    expect(keyless.stderr).toMatch(/--cert and --key go together/);
  });

  it("refuses peer frames whose connection certificate names another node", async () => {
    const raft = peerMethodCodecs().get("Raft")!;
    const node1 = cluster.config.nodes[0]!;
    // A certificate from the cluster CA for node 3, sending frames that claim node 2.
    const impostor = issueNodeCertificate(ca, join(cluster.dir, "impostor"), 3);
    const credentials = grpc.credentials.createSsl(readFileSync(ca.cert), readFileSync(impostor.key), readFileSync(impostor.cert));
    const raw = new RawBytesClient(node1.peer, credentials);
    try {
      const frame = encodeFrame([[1, message(2, 1, { term: 1_000_000 })]]);
      const { status } = await raw.bidi(
        raft.path,
        [raft.encode({ fromNode: "2", payload: Buffer.from(frame.payload), crc32c: frame.crc32c })],
        5000,
      );
      expect(status.code).toBe(grpc.status.DATA_LOSS);
      expect(status.details).toMatch(/certificate names node 3/);
    } finally {
      raw.close();
    }
    // A plaintext peer does not get a connection at all.
    const plain = new RawBytesClient(node1.peer);
    try {
      const { status } = await plain.bidi(raft.path, [Buffer.alloc(3)], 5000);
      expect(status.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      plain.close();
    }
    const status = await client(goodTls).status();
    for (const node of status.nodes) for (const group of node.groups) expect(group.term).toBeLessThan(1_000_000n);
  });

  it("cuts off a node whose certificate names the wrong node id; the others keep serving; the right certificate brings it back", async () => {
    const node3 = cluster.config.nodes[2]!;
    const saved = { cert: join(cluster.dir, "n3-saved.pem"), key: join(cluster.dir, "n3-saved-key.pem") };
    copyFileSync(node3.cert!, saved.cert);
    copyFileSync(node3.key!, saved.key);
    await cluster.kill(3);
    const wrong = issueNodeCertificate(ca, join(cluster.dir, "wrong"), 2);
    copyFileSync(wrong.cert, node3.cert!);
    copyFileSync(wrong.key, node3.key!);
    cluster.startNode(3);

    const tally = client(goodTls);
    const before = (await tally.get("tls:b")).value;
    for (let i = 0; i < 20; i++) await tally.add("tls:b", 1n);
    expect((await tally.get("tls:b")).value).toBe(before + 20n);
    // Node 3 runs but hears no one: no leader, nothing applied of the 20 adds.
    // Well past an election timeout: a node that could talk to its peers would know the leader.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const isolated = await eventually(() => client(goodTls, 2000, [node3.client]).status(), 15_000, "node 3 to serve Status");
    const view3 = isolated.nodes.find((n) => n.nodeId === "3")!;
    const view1 = isolated.nodes.find((n) => n.nodeId === "1")!;
    expect(view3.reachable).toBe(true);
    expect(view1.reachable).toBe(true);
    expect(view3.groups.find((g) => g.groupId === 1)!.leaderId).toBe("");
    expect(view3.groups.find((g) => g.groupId === 1)!.applied).toBeLessThan(view1.groups.find((g) => g.groupId === 1)!.commit);

    // Put the right certificate back, SIGHUP: new connections carry it and node 3 catches up.
    copyFileSync(saved.cert, node3.cert!);
    copyFileSync(saved.key, node3.key!);
    cluster.processes.get(3)!.kill("SIGHUP");
    await eventually(
      async () => {
        const status = await client(goodTls, 3000, [node3.client]).status();
        const group = status.nodes.find((n) => n.nodeId === "3")?.groups.find((g) => g.groupId === 1);
        const leaderGroup = status.nodes.find((n) => n.nodeId === "1")?.groups.find((g) => g.groupId === 1);
        return group !== undefined && leaderGroup !== undefined && group.leaderId !== "" && group.applied >= leaderGroup.commit - 1n
          ? true
          : undefined;
      },
      30_000,
      "node 3 to rejoin after its certificate was fixed",
    );
  });

  it("uses replaced certificate files for new connections after SIGHUP, without a restart", async () => {
    const node1 = cluster.config.nodes[0]!;
    const clientIdentity = { cert: goodTls.cert as string, key: goodTls.key as string };
    const oldSerial = await presentedSerial(node1.client, clientIdentity);
    expect(oldSerial).toBe(serialOf(node1.cert!));
    const renewed = issueNodeCertificate(ca, join(cluster.dir, "renewed"), 1);
    copyFileSync(renewed.cert, node1.cert!);
    copyFileSync(renewed.key, node1.key!);
    const pid = cluster.processes.get(1)!.pid;
    cluster.processes.get(1)!.kill("SIGHUP");
    const newSerial = serialOf(renewed.cert);
    expect(newSerial).not.toBe(oldSerial);
    await eventually(
      async () => ((await presentedSerial(node1.client, clientIdentity)) === newSerial ? true : undefined),
      10_000,
      "the client port to present the new certificate",
    );
    await eventually(
      async () => ((await presentedSerial(node1.peer, clientIdentity)) === newSerial ? true : undefined),
      10_000,
      "the peer port to present the new certificate",
    );
    expect(cluster.processes.get(1)!.pid).toBe(pid);
    // Old connections keep working and new ones verify against the new certificate.
    const tally = client(goodTls);
    const before = (await tally.get("tls:c")).value;
    await tally.add("tls:c", 3n);
    expect((await client(goodTls).get("tls:c")).value).toBe(before + 3n);
  });
});

describe("TLS cluster with clientAuth: none", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await TestCluster.start({ nodes: 1, shards: 1, tls: { clientAuth: "none" } });
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it("serves a client that has only the CA, and still refuses plaintext", async () => {
    const ca = join(cluster.dir, "certs", "ca.pem");
    const tally = new TallyClient({ endpoints: cluster.endpoints(), tls: { ca }, deadlineMs: 10_000 });
    try {
      expect((await tally.add("tls:none", 9n)).value).toBe(9n);
    } finally {
      await tally.close();
    }
    const status = tallyMethodCodecs().get("Status")!;
    const plain = new RawBytesClient(cluster.endpoints()[0]!);
    try {
      expect((await plain.unary(status.path, status.encode({ localOnly: true }), 3000)).code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      plain.close();
    }
  });
});
