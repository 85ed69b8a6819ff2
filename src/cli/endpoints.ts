/**
 * Which cluster tallyctl talks to, and how: the endpoints, TLS, and whether the cluster wants a
 * token. First match wins for the endpoints: --endpoints, the nodes of --config FILE,
 * $TALLY_ENDPOINTS, the nodes of ./cluster.yaml. TLS: --ca/--cert/--key, else the tls section of
 * the cluster file that was read (--config, or ./cluster.yaml when the endpoints came from it).
 *
 * An endpoint is host:port; `http://host:port` is accepted as the same (people paste URLs), and
 * `https://host:port` says TLS, which then needs the cluster's CA. The cli layer may not import
 * tallyd's config loader (src/server/config/config.ts), so the few fields tallyctl needs are read here.
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse } from "yaml";
import type { ClientTlsOptions } from "../util/tls.js";
import { UsageError } from "./exit-codes.js";
import { resolveTlsFlags, type TlsFlags } from "./tls-options.js";

export const CLUSTER_FILE_NAME = "cluster.yaml";

/** What tallyctl takes from a cluster file. */
export interface ClusterFile {
  path: string;
  endpoints: string[];
  tls?: ClientTlsOptions;
  /** The file has an auth section: calls need a token (or a client certificate identity). */
  auth: boolean;
}

export interface TargetFlags extends TlsFlags {
  endpoints?: string;
  config?: string;
}

export interface Target {
  endpoints: string[];
  tls?: ClientTlsOptions;
  /** The cluster file read, if any. */
  clusterFile?: ClusterFile;
}

function splitList(list: string): string[] {
  return list
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):(\d{1,5})$/;

/** host:port, or http(s)://host:port[/]; the scheme is returned apart. */
export function parseEndpoint(text: string): { address: string; scheme?: "http" | "https" } {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(text);
  let scheme: "http" | "https" | undefined;
  let rest = text;
  if (match !== null) {
    const name = match[1]!.toLowerCase();
    if (name !== "http" && name !== "https")
      throw new UsageError(`endpoint ${JSON.stringify(text)}: tallyctl speaks gRPC over http:// or https://, not ${name}://`);
    scheme = name;
    rest = match[2]!.replace(/\/$/, "");
  }
  const hostPort = HOST_PORT.exec(rest);
  const port = Number(hostPort?.[2]);
  if (hostPort === null || !(port >= 1 && port <= 65_535)) {
    throw new UsageError(
      `endpoint ${JSON.stringify(text)} is not host:port${scheme === undefined ? "" : ` after ${scheme}://`} (e.g. 127.0.0.1:7001)`,
    );
  }
  return scheme === undefined ? { address: rest } : { address: rest, scheme };
}

/** Reads the fields tallyctl needs from a cluster file; every problem is a UsageError naming the file. */
export async function readClusterFile(path: string, missing?: () => UsageError): Promise<ClusterFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw missing?.() ?? new UsageError(`--config: ${path} does not exist`);
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new UsageError(`${path} is not valid YAML: ${(error as Error).message}`);
  }
  const root = (parsed ?? {}) as { nodes?: unknown; tls?: unknown; auth?: unknown };
  const nodes = root.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0) throw new UsageError(`${path} has no nodes`);
  const endpoints = nodes.map((node, index) => {
    const client = (node as { client?: unknown } | null)?.client;
    if (typeof client !== "string" || client === "") throw new UsageError(`${path}: nodes[${index}] has no client address`);
    return client;
  });
  const file: ClusterFile = { path, endpoints, auth: root.auth !== undefined && root.auth !== null };
  const tls = tlsSection(root.tls, path);
  if (tls !== undefined) file.tls = tls;
  return file;
}

/** tls.ca and tls.client.cert/key, relative to the file. */
function tlsSection(section: unknown, path: string): ClientTlsOptions | undefined {
  if (section === undefined || section === null) return undefined;
  const tls = section as { ca?: unknown; client?: { cert?: unknown; key?: unknown } };
  const file = (value: unknown, field: string): string => {
    if (typeof value !== "string" || value === "") throw new UsageError(`${path}: ${field} must be a file path`);
    return isAbsolute(value) ? value : resolve(dirname(path), value);
  };
  const options: ClientTlsOptions = { ca: file(tls.ca, "tls.ca") };
  if (tls.client !== undefined)
    Object.assign(options, { cert: file(tls.client.cert, "tls.client.cert"), key: file(tls.client.key, "tls.client.key") });
  return options;
}

export async function resolveTarget(flags: TargetFlags, env: Record<string, string | undefined>, cwd: string): Promise<Target> {
  const fromEnv = env["TALLY_ENDPOINTS"]?.trim() ? env["TALLY_ENDPOINTS"] : undefined;
  let clusterFile: ClusterFile | undefined;
  if (flags.config !== undefined) {
    if (flags.config.trim() === "") throw new UsageError("--config is empty");
    clusterFile = await readClusterFile(resolve(cwd, flags.config));
  } else if (flags.endpoints === undefined && fromEnv === undefined) {
    const noEndpoints = () =>
      new UsageError(`no endpoints: pass --endpoints host:port,... or --config FILE, or run where ${CLUSTER_FILE_NAME} is`);
    clusterFile = await readClusterFile(join(cwd, CLUSTER_FILE_NAME), noEndpoints);
  }
  let list: string[];
  if (flags.endpoints !== undefined) {
    list = splitList(flags.endpoints);
    if (list.length === 0) throw new UsageError("--endpoints is empty");
  } else {
    list = clusterFile?.endpoints ?? splitList(fromEnv!);
  }
  const parsed = list.map(parseEndpoint);
  const schemes = new Set(parsed.map((endpoint) => endpoint.scheme).filter((scheme) => scheme !== undefined));
  if (schemes.size > 1) throw new UsageError("endpoints mix http:// and https://: a cluster is all TLS or all plaintext");
  const tls = resolveTlsFlags(flags, cwd) ?? clusterFile?.tls;
  if (schemes.has("https") && tls === undefined) {
    throw new UsageError(
      "https:// endpoints need the cluster's CA: --ca FILE (with --cert/--key for clientAuth: require), or --config FILE with a tls section",
    );
  }
  if (schemes.has("http") && tls !== undefined) {
    throw new UsageError(
      `http:// endpoints, but TLS is configured (${flags.ca !== undefined ? "--ca" : `tls section of ${clusterFile?.path}`}): use https:// or plain host:port`,
    );
  }
  const target: Target = { endpoints: parsed.map((endpoint) => endpoint.address) };
  if (tls !== undefined) target.tls = tls;
  if (clusterFile !== undefined) target.clusterFile = clusterFile;
  return target;
}

/** The endpoints alone (scripts/example.ts and kinds-example.ts): $TALLY_ENDPOINTS or ./cluster.yaml. */
export async function resolveEndpoints(flag: string | undefined, env: Record<string, string | undefined>, cwd: string): Promise<string[]> {
  return (await resolveTarget(flag === undefined ? {} : { endpoints: flag }, env, cwd)).endpoints;
}
