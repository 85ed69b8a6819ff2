/**
 * TLS for the client API and the peer transport: certificate files that reload without a restart,
 * and node identities bound to certificates.
 *
 * Reload: a ReloadingCertificateProvider re-reads its files every `refreshIntervalMs` (default
 * 30 s) and whenever reload() is called (tallyd calls it on SIGHUP). A new set is published only
 * when the files changed AND form a usable pair (key matches certificate, CA parses), so a
 * half-written rotation keeps the old set. grpc-js's certificate-provider credentials then use
 * the new set for every NEW connection, incoming and outgoing, and the peer transport redials
 * every peer on a reload (onReload), so its outgoing connections all carry the new certificate.
 * Connections other parties opened to this node (clients, other nodes' links) keep the session
 * they were made with until they close; they stay valid as long as the old certificate is.
 *
 * Identity: a node's certificate carries the SAN URI tally://node/<id> (or, failing that, the
 * subject CN tally-node-<id>). A peer is accepted only when its certificate chains to the
 * cluster CA and names the node id its frames claim.
 */
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { createSecureContext, type PeerCertificate } from "node:tls";

export interface TlsFiles {
  /** CA bundle (PEM) that peers' and clients' certificates must chain to. */
  ca: string;
  /** This side's certificate chain and key (PEM); a client without them cannot pass clientAuth=require. */
  cert?: string;
  key?: string;
}

interface CertificateSet {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

export class ReloadingCertificateProvider implements grpc.experimental.CertificateProvider {
  private current: CertificateSet;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly reloadListeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  /** Sets published since construction (the first load included). */
  generation = 1;

  constructor(
    readonly files: TlsFiles,
    private readonly options: {
      refreshIntervalMs?: number;
      onReload?: (generation: number) => void;
      onError?: (error: Error) => void;
    } = {},
  ) {
    // The first load throws: a node must not start with unusable certificates.
    this.current = readCertificateSet(files);
  }

  /** Re-reads the files now; publishes them if they changed and are usable. Returns true if published. */
  reload(): boolean {
    let next: CertificateSet;
    try {
      next = readCertificateSet(this.files);
    } catch (error) {
      this.options.onError?.(error as Error);
      return false;
    }
    if (sameSet(next, this.current)) return false;
    this.current = next;
    this.generation += 1;
    for (const listener of this.caListeners) listener({ caCertificate: next.ca });
    if (next.cert !== undefined && next.key !== undefined) {
      for (const listener of this.identityListeners) listener({ certificate: next.cert, privateKey: next.key });
    }
    this.options.onReload?.(this.generation);
    for (const listener of this.reloadListeners) listener();
    return true;
  }

  /** Called after each published reload (e.g. to redial long-lived connections). Returns the remover. */
  onReload(listener: () => void): () => void {
    this.reloadListeners.add(listener);
    return () => this.reloadListeners.delete(listener);
  }

  /** PEM contents as they are now (for credentials that cannot take a provider). */
  snapshot(): Readonly<CertificateSet> {
    return this.current;
  }

  // Listeners get the current set on a later microtask, as grpc-js's own FileWatcher provider
  // does: its server credentials register their watcher only after adding the listener, and a
  // synchronous first update would be lost (the server then drops every connection).
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => {
      if (this.caListeners.has(listener)) listener({ caCertificate: this.current.ca });
    });
    this.startTimer();
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
    this.maybeStopTimer();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (!this.identityListeners.has(listener)) return;
      const { cert, key } = this.current;
      listener(cert !== undefined && key !== undefined ? { certificate: cert, privateKey: key } : null);
    });
    this.startTimer();
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
    this.maybeStopTimer();
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private startTimer(): void {
    const intervalMs = this.options.refreshIntervalMs ?? 30_000;
    if (this.timer !== undefined || intervalMs <= 0) return;
    this.timer = setInterval(() => this.reload(), intervalMs);
    this.timer.unref();
  }

  private maybeStopTimer(): void {
    if (this.caListeners.size === 0 && this.identityListeners.size === 0) this.close();
  }
}

function readCertificateSet(files: TlsFiles): CertificateSet {
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

function sameSet(a: CertificateSet, b: CertificateSet): boolean {
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

/** Channel credentials for a client: the CA must sign the node's certificate; the hostname is checked. */
export function clientTlsCredentials(tls: ClientTlsOptions): grpc.ChannelCredentials {
  const pem = (value: string | Buffer | undefined, what: string): Buffer | null => {
    if (value === undefined) return null;
    if (Buffer.isBuffer(value)) return value;
    if (value.startsWith("-----BEGIN")) return Buffer.from(value);
    try {
      return readFileSync(value);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${value}: ${(error as Error).message}`, { cause: error });
    }
  };
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw new Error("tls: a client certificate needs its key and a key its certificate");
  return grpc.credentials.createSsl(pem(tls.ca, "CA"), pem(tls.key, "key"), pem(tls.cert, "certificate"));
}

/** Server credentials that follow the provider's reloads (new connections get the newest set). */
export function reloadingServerCredentials(
  provider: ReloadingCertificateProvider,
  requireClientCertificate: boolean,
): grpc.ServerCredentials {
  // The same object serves as CA and identity provider (grpc-js 1.14 swaps the two parameters of
  // createCertificateProviderServerCredentials internally; passing one object makes that moot).
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, requireClientCertificate);
}

/**
 * Channel credentials that follow the provider's reloads. `expectedNodeId`: the server must
 * present that node's certificate (peer links); otherwise the usual hostname check alone.
 */
export function reloadingChannelCredentials(provider: ReloadingCertificateProvider, expectedNodeId?: number): grpc.ChannelCredentials {
  const hasIdentity = provider.files.cert !== undefined;
  const verify: grpc.VerifyOptions = {};
  if (expectedNodeId !== undefined) {
    verify.checkServerIdentity = (_hostname, certificate) => {
      const id = nodeIdOfCertificate(certificate);
      return id === expectedNodeId
        ? undefined
        : new Error(`the server's certificate names node ${id ?? "(none)"}, expected node ${expectedNodeId}`);
    };
  }
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, hasIdentity ? provider : null, verify);
}
