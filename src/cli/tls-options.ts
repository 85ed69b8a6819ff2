import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse } from "yaml";
import type { ClientTlsOptions } from "../util/tls.js";
import { CLUSTER_FILE_NAME } from "./endpoints.js";
import { UsageError } from "./exit-codes.js";

export interface TlsFlags {
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * TLS for tallyctl, first match wins: --ca (with --cert and --key for clientAuth: require), then,
 * when the endpoints come from ./cluster.yaml, its tls section (tls.ca and tls.client.cert/key,
 * relative to the file). Undefined: plaintext.
 */
export async function resolveTls(flags: TlsFlags, endpointsFromClusterFile: boolean, cwd: string): Promise<ClientTlsOptions | undefined> {
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new UsageError("--cert and --key go together");
  if (flags.ca !== undefined) {
    const tls: ClientTlsOptions = { ca: resolve(cwd, flags.ca) };
    if (flags.cert !== undefined && flags.key !== undefined) Object.assign(tls, { cert: resolve(cwd, flags.cert), key: resolve(cwd, flags.key) });
    return tls;
  }
  if (flags.cert !== undefined) throw new UsageError("--cert and --key need --ca (the cluster's CA)");
  if (!endpointsFromClusterFile) return undefined;
  const path = join(cwd, CLUSTER_FILE_NAME);
  let section: unknown;
  try {
    section = (parse(await readFile(path, "utf8")) as { tls?: unknown } | null)?.tls;
  } catch {
    return undefined; // resolveEndpoints already reported an unreadable file
  }
  if (section === undefined || section === null) return undefined;
  const tls = section as { ca?: unknown; client?: { cert?: unknown; key?: unknown } };
  const file = (value: unknown, field: string): string => {
    if (typeof value !== "string" || value === "") throw new UsageError(`${path}: ${field} must be a file path`);
    return isAbsolute(value) ? value : resolve(dirname(path), value);
  };
  const options: ClientTlsOptions = { ca: file(tls.ca, "tls.ca") };
  if (tls.client !== undefined) Object.assign(options, { cert: file(tls.client.cert, "tls.client.cert"), key: file(tls.client.key, "tls.client.key") });
  return options;
}
