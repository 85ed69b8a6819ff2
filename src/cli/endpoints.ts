import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";
import { UsageError } from "./exit-codes.js";

/** The cluster file `npm start` writes and reads (only the fields tallyctl needs). */
export interface ClusterFile {
  nodes: Array<{ id: number | string; client: string }>;
}

export const CLUSTER_FILE_NAME = "cluster.yaml";

function splitList(list: string): string[] {
  return list
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/**
 * Where to find the cluster, first match wins: --endpoints, $TALLY_ENDPOINTS, the client
 * addresses of every node in ./cluster.yaml.
 */
export async function resolveEndpoints(flag: string | undefined, env: Record<string, string | undefined>, cwd: string): Promise<string[]> {
  if (flag !== undefined) {
    const endpoints = splitList(flag);
    if (endpoints.length === 0) throw new UsageError("--endpoints is empty");
    return endpoints;
  }
  const fromEnv = env["TALLY_ENDPOINTS"];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return splitList(fromEnv);
  const path = join(cwd, CLUSTER_FILE_NAME);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new UsageError(`no endpoints: pass --endpoints host:port,... or run where ${CLUSTER_FILE_NAME} is`);
    }
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new UsageError(`${path} is not valid YAML: ${(error as Error).message}`);
  }
  const nodes = (parsed as Partial<ClusterFile> | null)?.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0) throw new UsageError(`${path} has no nodes`);
  return nodes.map((node, index) => {
    const client = (node as { client?: unknown } | null)?.client;
    if (typeof client !== "string" || client === "") throw new UsageError(`${path}: nodes[${index}] has no client address`);
    return client;
  });
}
