/**
 * One NodeConnection (one channel, one Pipeline stream) per node address, created on first use,
 * and each node's health: a node whose connection failed, or that the client marked failed, is
 * avoided for NODE_AVOID_MS when another replica can serve.
 */
import type * as grpc from "@grpc/grpc-js";
import type { ErrorInfo } from "../api/error-details.js";
import { monotonicMs } from "../util/clock.js";
import type { TallyError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { ClientClosedError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import { NodeConnection } from "./node-connection.js";

/** After a connection failure, prefer other replicas for this long. */
export const NODE_AVOID_MS = 1_000;

export interface ConnectionSettings {
  credentials: grpc.ChannelCredentials;
  token: string | undefined;
  connectTimeoutMs: number;
  logger: Logger;
  /** Advertised address -> address dialed (TallyClientOptions.addressMap). */
  addressMap?: Record<string, string> | undefined;
}

export class ConnectionPool {
  private readonly connections = new Map<string, NodeConnection>();
  private readonly failedAtMs = new Map<string, number>();

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly life: Lifecycle,
  ) {}

  connection(address: string): NodeConnection {
    if (this.life.closed) throw new ClientClosedError();
    let connection = this.connections.get(address);
    if (connection === undefined) {
      connection = new NodeConnection({
        address: this.settings.addressMap?.[address] ?? address,
        credentials: this.settings.credentials,
        connectTimeoutMs: this.settings.connectTimeoutMs,
        logger: this.settings.logger,
        ...(this.settings.token === undefined ? {} : { token: this.settings.token }),
      });
      this.connections.set(address, connection);
    }
    return connection;
  }

  markFailed(address: string): void {
    this.failedAtMs.set(address, monotonicMs());
  }

  /** When the client last marked the node failed (its connection's own failures not counted). */
  markedFailedAtMs(address: string): number {
    return this.failedAtMs.get(address) ?? Number.NEGATIVE_INFINITY;
  }

  isHealthy(address: string, now: number): boolean {
    const failedAt = Math.max(
      this.failedAtMs.get(address) ?? Number.NEGATIVE_INFINITY,
      this.connections.get(address)?.lastFailureAtMs ?? Number.NEGATIVE_INFINITY,
    );
    return now - failedAt >= NODE_AVOID_MS;
  }

  /** Forgets the node's failures (a newer leader hint names it). */
  clearFailure(address: string): void {
    this.failedAtMs.delete(address);
    this.connections.get(address)?.clearFailure();
  }

  closeAll(): void {
    for (const connection of this.connections.values()) connection.close();
  }

  clear(): void {
    this.connections.clear();
  }
}

/** Whether a failed call reached a node (it answered with an error) or not (down, unreachable). */
export function nodeAnswered(error: TallyError, info: ErrorInfo | undefined): boolean {
  return info !== undefined || (error.code !== "UNAVAILABLE" && error.code !== "TIMEOUT");
}
