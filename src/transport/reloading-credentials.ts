/**
 * gRPC credentials whose certificates reload without a restart, for the node's ports and its
 * outgoing calls (the peer transport, and tallyd through src/server/config/tls.ts).
 *
 * Reload: a ReloadingCertificateProvider re-reads its files every `refreshIntervalMs` (default
 * 30 s) and whenever reload() is called (tallyd calls it on SIGHUP). A new set is published only
 * when the files changed AND form a usable pair (key matches certificate, CA parses), so a
 * half-written rotation keeps the old set. grpc-js's certificate-provider credentials then use
 * the new set for every NEW connection, incoming and outgoing, and the peer transport redials
 * every peer on a reload (onReload), so its outgoing connections all carry the new certificate.
 * Connections other parties opened to this node (clients, other nodes' links) keep the session
 * they were made with until they close; they stay valid as long as the old certificate is.
 */
import * as grpc from "@grpc/grpc-js";
import { nodeIdOfCertificate, readCertificateSet, sameCertificateSet, type CertificateSet, type TlsFiles } from "../util/tls.js";

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
    if (sameCertificateSet(next, this.current)) return false;
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
