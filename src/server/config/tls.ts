/**
 * cluster.yaml's tls section turned into credentials. One ReloadingCertificateProvider per node
 * and process serves the client port, the peer port and the node's own outgoing calls, so one
 * SIGHUP (or the periodic re-read) rotates all three.
 */
import * as grpc from "@grpc/grpc-js";
import {
  ReloadingCertificateProvider,
  reloadingChannelCredentials,
  reloadingServerCredentials,
} from "../../transport/reloading-credentials.js";
import type { Logger } from "../../util/log.js";
import { ConfigError, type ClusterConfig, type NodeConfig } from "./config.js";

const providers = new Map<string, ReloadingCertificateProvider>();

/**
 * The node's certificate provider, or undefined without a tls section. Throws a ConfigError that
 * names the field when a file is missing or the pair is unusable.
 */
export function nodeCertificateProvider(config: ClusterConfig, node: NodeConfig, log?: Logger): ReloadingCertificateProvider | undefined {
  const tls = config.tls;
  if (tls === undefined) return undefined;
  const cacheKey = `${config.source}#${node.id}`;
  const cached = providers.get(cacheKey);
  if (cached !== undefined) return cached;
  const index = config.nodes.indexOf(node);
  let provider: ReloadingCertificateProvider;
  try {
    provider = new ReloadingCertificateProvider(
      { ca: tls.ca, cert: node.cert, key: node.key },
      {
        refreshIntervalMs: tls.reloadSeconds * 1000,
        onReload: (generation) => log?.info({ generation, cert: node.cert }, "TLS certificates reloaded"),
        onError: (error) => log?.warn({ error: error.message }, "TLS certificates not reloaded; keeping the current ones"),
      },
    );
  } catch (error) {
    throw new ConfigError(`${config.source}: tls.ca / nodes[${index}].cert / nodes[${index}].key: ${(error as Error).message}`);
  }
  providers.set(cacheKey, provider);
  return provider;
}

/** The client port: TLS, with client certificates required when tls.clientAuth is "require". */
export function clientPortCredentials(config: ClusterConfig, node: NodeConfig, log?: Logger): grpc.ServerCredentials {
  const provider = nodeCertificateProvider(config, node, log);
  if (provider === undefined) return grpc.ServerCredentials.createInsecure();
  return reloadingServerCredentials(provider, config.tls!.clientAuth === "require");
}

/** A node calling another node's client port (Status fan-out) presents its own certificate. */
export function nodeClientCredentials(config: ClusterConfig, node: NodeConfig): grpc.ChannelCredentials {
  const provider = nodeCertificateProvider(config, node);
  return provider === undefined ? grpc.credentials.createInsecure() : reloadingChannelCredentials(provider);
}

/** Tools that read cluster.yaml (tallyctl defaults, npm start's readiness wait, tests): tls.client. */
export function toolCredentials(config: ClusterConfig): grpc.ChannelCredentials {
  const tls = config.tls;
  if (tls === undefined) return grpc.credentials.createInsecure();
  const provider = new ReloadingCertificateProvider({ ca: tls.ca, cert: tls.client?.cert, key: tls.client?.key }, { refreshIntervalMs: 0 });
  return reloadingChannelCredentials(provider);
}
