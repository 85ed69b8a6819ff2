/**
 * TLS files and identities, below the layers that turn them into gRPC credentials
 * (src/transport/reloading-credentials.ts for nodes, src/client/tls-credentials.ts for clients).
 *
 * Files: a set (CA, and a certificate with its key) is read whole and checked the way a handshake
 * would check it (the key matches the certificate, the CA parses), so a half-written rotation is
 * never taken for a new set.
 *
 * Identity: a node's certificate carries the SAN URI tally://node/<id> (or, failing that, the
 * subject CN tally-node-<id>). A peer is accepted only when its certificate chains to the
 * cluster CA and names the node id its frames claim.
 */
import { readFileSync } from "node:fs";
import { createSecureContext, type PeerCertificate } from "node:tls";

export interface TlsFiles {
  /** CA bundle (PEM) that peers' and clients' certificates must chain to. */
  ca: string;
  /** This side's certificate chain and key (PEM); a client without them cannot pass clientAuth=require. */
  cert?: string;
  key?: string;
}

/** The PEM contents of a TlsFiles set. */
export interface CertificateSet {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads and checks a set; throws, naming the file, when one is missing or the set is unusable. */
export function readCertificateSet(files: TlsFiles): CertificateSet {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const set: CertificateSet = { ca: read("CA", files.ca) };
  if ((files.cert === undefined) !== (files.key === undefined))
    throw new Error("a TLS certificate needs its key and a key its certificate");
  if (files.cert !== undefined && files.key !== undefined) {
    set.cert = read("certificate", files.cert);
    set.key = read("key", files.key);
  }
  try {
    // Parses everything and checks the key belongs to the certificate, as a handshake would.
    createSecureContext({ ca: set.ca, cert: set.cert, key: set.key });
  } catch (error) {
    throw new Error(`unusable TLS files (${[files.ca, files.cert, files.key].filter(Boolean).join(", ")}): ${(error as Error).message}`, {
      cause: error,
    });
  }
  return set;
}

export function sameCertificateSet(a: CertificateSet, b: CertificateSet): boolean {
  const same = (x: Buffer | undefined, y: Buffer | undefined) => (x === undefined ? y === undefined : y !== undefined && x.equals(y));
  return same(a.ca, b.ca) && same(a.cert, b.cert) && same(a.key, b.key);
}

const NODE_URI = /^URI:tally:\/\/node\/(\d{1,15})$/;
const NODE_CN = /^tally-node-(\d{1,15})$/;

/** The node id a certificate names (SAN URI tally://node/<id>, else CN tally-node-<id>), or undefined. */
export function nodeIdOfCertificate(certificate: PeerCertificate | undefined | null): number | undefined {
  if (!certificate || Object.keys(certificate).length === 0) return undefined;
  const ids = new Set<number>();
  for (const name of (certificate.subjectaltname ?? "").split(/,\s*/)) {
    const match = NODE_URI.exec(name);
    if (match) ids.add(Number(match[1]));
  }
  if (ids.size === 0) {
    const cn = certificate.subject?.CN;
    const match = typeof cn === "string" ? NODE_CN.exec(cn) : null;
    if (match) ids.add(Number(match[1]));
  }
  // A certificate naming two nodes identifies neither.
  if (ids.size !== 1) return undefined;
  const [id] = ids;
  return id !== undefined && id > 0 ? id : undefined;
}

/** TLS settings of a client: PEM contents, or paths of PEM files. */
export interface ClientTlsOptions {
  /** The cluster's CA. */
  ca: string | Buffer;
  /** A client certificate and key, for a cluster with clientAuth: require. */
  cert?: string | Buffer;
  key?: string | Buffer;
}
