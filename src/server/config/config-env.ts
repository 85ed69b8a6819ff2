/**
 * The TALLY_* environment variables of cluster.yaml's settings (the rule and the table are in
 * config-settings.ts): overlaid on a copy of the document before validation, so a bad variable
 * gets the validator's own message, naming the variable. Also the error type of config loading.
 */
import { parse as parseYaml } from "yaml";
import { CONFIG_SETTINGS, envVarName, type SettingSpec } from "./config-settings.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Where settings may come from besides the document: tallyd passes process.env and its --node. */
export interface ConfigSources {
  /** Variables named by the rule in config-settings.ts; they override the file. */
  env?: Record<string, string | undefined>;
  /** The node the TALLY_NODE_* variables change (tallyd's --node or TALLY_NODE_ID). */
  nodeId?: number;
}

/**
 * Overlays the TALLY_* variables on a copy of the document. Returns it with the origin of every
 * overridden field (document path -> variable), so messages name the variable. Values are
 * converted by the setting's type only as far as the text allows: "abc" for an integer stays a
 * string and the validator rejects it, exactly as it would in the file.
 */
export function applyEnvironment(
  document: Record<string, unknown>,
  sources: ConfigSources,
  where: (field: string) => string,
): { document: Record<string, unknown>; origins: Map<string, string> } {
  const origins = new Map<string, string>();
  const env = sources.env ?? {};
  const byName = new Map(CONFIG_SETTINGS.map((spec) => [envVarName(spec.path), spec]));
  for (const name of Object.keys(env)) {
    if (SETTING_PREFIXES.some((prefix) => name.startsWith(prefix)) && !byName.has(name) && env[name] !== undefined) {
      throw new ConfigError(
        `environment variable ${name}: no such setting (docs/configuration.md lists them; the rule is TALLY_ + the path in upper snake case)`,
      );
    }
  }
  const set = Object.entries(env).filter(
    (entry): entry is [string, string] => byName.has(entry[0]) && entry[1] !== undefined && entry[1] !== "",
  );
  if (set.length === 0) return { document, origins };
  const copy = structuredClone(document);
  // Lists first: TALLY_NODES may supply the entry that the TALLY_NODE_* variables then change.
  set.sort(([a], [b]) => Number(byName.get(b)!.type === "list") - Number(byName.get(a)!.type === "list"));
  for (const [name, text] of set) {
    const spec = byName.get(name)!;
    if (spec.path === "nodes[].id") continue; // the selector, not a value
    const value = envValue(spec, name, text);
    if (!spec.path.startsWith("nodes[].")) {
      setPath(copy, spec.path.split("."), value, where);
      origins.set(spec.path, name);
      continue;
    }
    if (sources.nodeId === undefined)
      throw new ConfigError(`environment variable ${name}: needs TALLY_NODE_ID (or tallyd --node) to say which node it configures`);
    const nodes = Array.isArray(copy.nodes) ? (copy.nodes as unknown[]) : [];
    const index = nodes.findIndex(
      (node) => typeof node === "object" && node !== null && (node as Record<string, unknown>).id === sources.nodeId,
    );
    if (index < 0) throw new ConfigError(`environment variable ${name}: node ${sources.nodeId} (TALLY_NODE_ID or --node) is not in nodes`);
    const field = spec.path.slice("nodes[].".length);
    (nodes[index] as Record<string, unknown>)[field] = value;
    origins.set(`nodes[${index}].${field}`, name);
  }
  return { document: copy, origins };
}

const SETTING_PREFIXES = [...new Set(CONFIG_SETTINGS.map((spec) => `${envVarName(spec.path).split("_").slice(0, 2).join("_")}_`))];

function envValue(spec: SettingSpec, name: string, text: string): unknown {
  switch (spec.type) {
    case "integer":
    case "integer or 0":
      return /^\s*-?\d+\s*$/.test(text) ? Number(text) : text;
    case "boolean":
      return text === "true" ? true : text === "false" ? false : text;
    case "list":
      try {
        return parseYaml(text);
      } catch (error) {
        throw new ConfigError(`environment variable ${name}: not valid YAML: ${(error as Error).message}`);
      }
    default:
      return text;
  }
}

function setPath(document: Record<string, unknown>, segments: string[], value: unknown, where: (field: string) => string): void {
  let object = document;
  segments.slice(0, -1).forEach((segment, i) => {
    object[segment] ??= {};
    object = asObject(object[segment], where(segments.slice(0, i + 1).join(".")));
  });
  object[segments[segments.length - 1]!] = value;
}

export function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${where} must be a mapping`);
  return value as Record<string, unknown>;
}
