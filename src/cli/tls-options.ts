import { resolve } from "node:path";
import type { ClientTlsOptions } from "../util/tls.js";
import { UsageError } from "./exit-codes.js";

export interface TlsFlags {
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * TLS from tallyctl's flags: --ca (with --cert and --key for clientAuth: require), paths relative
 * to the working directory. Undefined: no TLS flags (the cluster file's tls section, if any, then
 * applies: src/cli/endpoints.ts).
 */
export function resolveTlsFlags(flags: TlsFlags, cwd: string): ClientTlsOptions | undefined {
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new UsageError("--cert and --key go together");
  if (flags.ca === undefined) {
    if (flags.cert !== undefined) throw new UsageError("--cert and --key need --ca (the cluster's CA)");
    return undefined;
  }
  const tls: ClientTlsOptions = { ca: resolve(cwd, flags.ca) };
  if (flags.cert !== undefined && flags.key !== undefined)
    Object.assign(tls, { cert: resolve(cwd, flags.cert), key: resolve(cwd, flags.key) });
  return tls;
}
