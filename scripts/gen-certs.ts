/**
 * `npm run certs`: a development CA and certificates for every node of cluster.yaml (with openssl),
 * plus cluster-tls.yaml: cluster.yaml with a tls section, which `npm start -- --tls` runs.
 *
 *   npm run certs [-- --config cluster.yaml --out certs --tls-config cluster-tls.yaml --force]
 *
 * Node n gets certs/n<n>.pem + certs/n<n>-key.pem, naming it as SAN URI tally://node/<n> (what
 * peers check) and CN tally-node-<n>, valid for localhost, 127.0.0.1 and the hosts of its
 * addresses, for both server and client use. certs/client.pem + certs/client-key.pem is the
 * client certificate tallyctl and the tools use (tls.client). Keys are P-256, never for production.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseDocument } from "yaml";
import { loadClusterConfig } from "../src/server/config/config.js";

export interface CertificatePair {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? "";
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new Error("openssl is not installed (apt-get install openssl)");
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || (error as Error).message}`);
  }
}

/** A self-signed CA: <dir>/<name>.pem and <dir>/<name>-key.pem. */
export function createCa(dir: string, name = "ca", commonName = "tally dev CA"): CertificatePair {
  mkdirSync(dir, { recursive: true });
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      pair.key,
      "-out",
      pair.cert,
      "-days",
      "3650",
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  return pair;
}

export interface LeafOptions {
  commonName: string;
  /** subjectAltName entries, e.g. ["URI:tally://node/1", "DNS:localhost", "IP:127.0.0.1"]. */
  altNames: string[];
  /** Days of validity (default 825). */
  days?: number;
}

/** A certificate signed by `ca`: <dir>/<name>.pem and <dir>/<name>-key.pem. */
export function issueCertificate(ca: CertificatePair, dir: string, name: string, options: LeafOptions): CertificatePair {
  mkdirSync(dir, { recursive: true });
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
  const csr = join(dir, `${name}.csr`);
  const extensions = join(dir, `${name}.ext`);
  writeFileSync(
    extensions,
    [
      `subjectAltName=${options.altNames.join(",")}`,
      "extendedKeyUsage=serverAuth,clientAuth",
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
    ].join("\n") + "\n",
  );
  try {
    openssl(
      [
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        pair.key,
        "-out",
        csr,
        "-subj",
        `/CN=${options.commonName}`,
      ],
      dir,
    );
    openssl(
      [
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca.cert,
        "-CAkey",
        ca.key,
        "-set_serial",
        `0x${randomBytes(12).toString("hex")}`,
        "-days",
        String(options.days ?? 825),
        "-out",
        pair.cert,
        "-extfile",
        extensions,
      ],
      dir,
    );
  } finally {
    rmSync(csr, { force: true });
    rmSync(extensions, { force: true });
  }
  return pair;
}

/** Alt names for a node: its identity URI plus the hosts it is reached at. */
export function nodeAltNames(id: number, hosts: string[]): string[] {
  const names = new Set<string>([`URI:tally://node/${id}`, "DNS:localhost", "IP:127.0.0.1"]);
  for (const host of hosts) names.add(isIP(host.replace(/^\[|\]$/g, "")) ? `IP:${host.replace(/^\[|\]$/g, "")}` : `DNS:${host}`);
  return [...names];
}

export function issueNodeCertificate(ca: CertificatePair, dir: string, id: number, hosts: string[] = [], name = `n${id}`): CertificatePair {
  return issueCertificate(ca, dir, name, { commonName: `tally-node-${id}`, altNames: nodeAltNames(id, hosts) });
}

export function issueClientCertificate(ca: CertificatePair, dir: string, name = "client"): CertificatePair {
  return issueCertificate(ca, dir, name, { commonName: "tally-client", altNames: ["DNS:tally-client"] });
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(":"));
}

/**
 * Certificates for every node of `configPath` under `outDir`, and `tlsConfigPath`: the same
 * cluster file with a tls section and each node's cert and key (paths relative to it).
 */
export function generateClusterCertificates(
  configPath: string,
  outDir: string,
  tlsConfigPath: string,
): { ca: CertificatePair; client: CertificatePair } {
  const config = loadClusterConfig(configPath);
  const ca = createCa(outDir);
  const client = issueClientCertificate(ca, outDir);
  const document = parseDocument(readFileSync(configPath, "utf8"));
  const base = dirname(resolve(tlsConfigPath));
  const rel = (path: string) => relative(base, path);
  config.nodes.forEach((node, index) => {
    const pair = issueNodeCertificate(ca, outDir, node.id, [hostOf(node.client), hostOf(node.peer)]);
    document.setIn(["nodes", index, "cert"], rel(pair.cert));
    document.setIn(["nodes", index, "key"], rel(pair.key));
  });
  document.set("tls", {
    ca: rel(ca.cert),
    clientAuth: "require",
    client: { cert: rel(client.cert), key: rel(client.key) },
    reloadSeconds: 30,
  });
  const header = `# Generated by \`npm run certs\` from ${relative(base, configPath)}: the same cluster with TLS on the client port\n# (client certificates required) and mTLS between nodes. \`npm start -- --tls\` runs it.\n`;
  writeFileSync(tlsConfigPath, header + document.toString());
  loadClusterConfig(tlsConfigPath); // what tallyd will do: fails here rather than at start
  return { ca, client };
}

function main(): void {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: string) => {
    const at = args.indexOf(name);
    return at >= 0 && args[at + 1] !== undefined ? resolve(args[at + 1]!) : fallback;
  };
  const configPath = flag("--config", join(root, "cluster.yaml"));
  const outDir = flag("--out", join(dirname(configPath), "certs"));
  const tlsConfigPath = flag("--tls-config", join(dirname(configPath), "cluster-tls.yaml"));
  if (existsSync(join(outDir, "ca.pem")) && !args.includes("--force")) {
    process.stderr.write(`${outDir}/ca.pem exists; pass --force to replace the CA and every certificate\n`);
    process.exit(1);
  }
  const { ca, client } = generateClusterCertificates(configPath, outDir, tlsConfigPath);
  process.stdout.write(
    [
      `certificates in ${outDir} (CA ${ca.cert}); cluster file ${tlsConfigPath}`,
      "run it:   npm start -- --tls",
      `tallyctl: npx tallyctl --ca ${relative(process.cwd(), ca.cert)} --cert ${relative(process.cwd(), client.cert)} --key ${relative(process.cwd(), client.key)} status`,
      "",
    ].join("\n"),
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
