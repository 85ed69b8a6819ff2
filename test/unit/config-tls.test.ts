import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigError, parseClusterConfig } from "../../src/server/config/config.js";
import { nodeCertificateProvider } from "../../src/server/config/tls.js";
import { ReloadingCertificateProvider } from "../../src/transport/reloading-credentials.js";
import { nodeIdOfCertificate } from "../../src/util/tls.js";
import { createCa, issueCertificate, issueNodeCertificate, type CertificatePair } from "../../scripts/gen-certs.js";

const node = (id: number, extra: Record<string, unknown> = {}) => ({
  id,
  client: `127.0.0.1:${7000 + id}`,
  peer: `127.0.0.1:${7100 + id}`,
  dataDir: `/tmp/tally-tls-test/n${id}`,
  ...extra,
});
const withCerts = (id: number) => node(id, { cert: `certs/n${id}.pem`, key: `certs/n${id}-key.pem` });
const tlsBase = (tls: Record<string, unknown> = {}) => ({
  cluster: { replicationFactor: 1, shards: 1 },
  tls: { ca: "certs/ca.pem", ...tls },
  nodes: [withCerts(1)],
});

function rejects(document: unknown, fragment: string): void {
  expect(() => parseClusterConfig(document, "/etc/tally/cluster.yaml")).toThrow(ConfigError);
  expect(() => parseClusterConfig(document, "/etc/tally/cluster.yaml")).toThrow(fragment);
}

describe("cluster.yaml tls section", () => {
  test("paths resolve against the config file; clientAuth defaults to require", () => {
    const config = parseClusterConfig({ ...tlsBase({ client: { cert: "/abs/client.pem", key: "c-key.pem" } }) }, "/etc/tally/cluster.yaml");
    expect(config.tls).toEqual({
      ca: "/etc/tally/certs/ca.pem",
      clientAuth: "require",
      reloadSeconds: 30,
      client: { cert: "/abs/client.pem", key: "/etc/tally/c-key.pem" },
    });
    expect(config.nodes[0]).toMatchObject({ cert: "/etc/tally/certs/n1.pem", key: "/etc/tally/certs/n1-key.pem" });
    expect(parseClusterConfig({ cluster: { replicationFactor: 1, shards: 1 }, nodes: [node(1)] }).tls).toBeUndefined();
  });

  test("errors name the field", () => {
    rejects(tlsBase({ clientAuth: "optional" }), 'tls.clientAuth must be "require" or "none", got "optional"');
    rejects({ ...tlsBase(), tls: { clientAuth: "none" } }, "tls.ca must be a file path");
    rejects(tlsBase({ cas: "x" }), 'tls: unknown field "cas"');
    rejects(tlsBase({ reloadSeconds: 0 }), "tls.reloadSeconds must be a positive integer");
    rejects(tlsBase({ client: { cert: "c.pem" } }), "tls.client.key must be a file path");
    rejects({ ...tlsBase(), nodes: [node(1, { cert: "n1.pem" })] }, "nodes[0].key is required when the tls section is present");
    rejects(
      { cluster: { replicationFactor: 1, shards: 1 }, nodes: [node(1, { cert: "n1.pem", key: "k.pem" })] },
      "nodes[0].cert needs a top-level tls section",
    );
  });
});

describe("certificates", () => {
  let dir: string;
  let ca: CertificatePair;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tally-tls-unit-"));
    ca = createCa(join(dir, "certs"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a node's identity comes from the SAN URI, else the CN; none or two is no identity", () => {
    const certificate = (pair: CertificatePair) => {
      const x509 = new X509Certificate(readFileSync(pair.cert));
      return { subjectaltname: x509.subjectAltName, subject: { CN: /CN=([^\n]+)/.exec(x509.subject)?.[1] } } as never;
    };
    expect(nodeIdOfCertificate(certificate(issueNodeCertificate(ca, join(dir, "certs"), 7)))).toBe(7);
    const cnOnly = issueCertificate(ca, join(dir, "certs"), "cn-only", { commonName: "tally-node-5", altNames: ["DNS:localhost"] });
    expect(nodeIdOfCertificate(certificate(cnOnly))).toBe(5);
    const two = issueCertificate(ca, join(dir, "certs"), "two", {
      commonName: "x",
      altNames: ["URI:tally://node/1", "URI:tally://node/2"],
    });
    expect(nodeIdOfCertificate(certificate(two))).toBeUndefined();
    const client = issueCertificate(ca, join(dir, "certs"), "plain", { commonName: "tally-client", altNames: ["DNS:tally-client"] });
    expect(nodeIdOfCertificate(certificate(client))).toBeUndefined();
    expect(nodeIdOfCertificate(undefined)).toBeUndefined();
  });

  test("reload publishes a changed, usable set only; a broken rotation keeps the old one", async () => {
    const certs = join(dir, "certs");
    const first = issueNodeCertificate(ca, certs, 1, [], "r1");
    const second = issueNodeCertificate(ca, certs, 1, [], "r2");
    const live = { ca: ca.cert, cert: join(dir, "live.pem"), key: join(dir, "live-key.pem") };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const errors: string[] = [];
    const provider = new ReloadingCertificateProvider(live, { refreshIntervalMs: 0, onError: (error) => errors.push(error.message) });
    const seen: string[] = [];
    provider.addIdentityCertificateListener((update) => seen.push(update ? new X509Certificate(update.certificate).serialNumber : "none"));
    await Promise.resolve();
    const serial = (path: string) => new X509Certificate(readFileSync(path)).serialNumber;
    expect(seen).toEqual([serial(first.cert)]);
    expect(provider.reload()).toBe(false); // unchanged
    copyFileSync(second.cert, live.cert); // half a rotation: the key does not match yet
    expect(provider.reload()).toBe(false);
    expect(errors.at(-1)).toMatch(/unusable TLS files/);
    copyFileSync(second.key, live.key);
    expect(provider.reload()).toBe(true);
    expect(seen).toEqual([serial(first.cert), serial(second.cert)]);
    expect(provider.generation).toBe(2);
    provider.close();
  });

  test("a missing certificate file is a config error naming the fields", () => {
    const path = join(dir, "cluster.yaml");
    writeFileSync(path, "");
    const config = parseClusterConfig(
      { ...tlsBase(), nodes: [node(1, { cert: "certs/missing.pem", key: "certs/missing-key.pem" })] },
      path,
    );
    expect(() => nodeCertificateProvider(config, config.nodes[0]!)).toThrow(ConfigError);
    expect(() => nodeCertificateProvider(config, config.nodes[0]!)).toThrow(
      /nodes\[0\]\.cert.*cannot read the TLS certificate .*missing\.pem/,
    );
  });
});
