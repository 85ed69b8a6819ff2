/**
 * Global reads over regions (docs/regions.md): the local value of a key (linearizable) plus each
 * replicated region's component of it, as of the origin log index it reflects, with that region's
 * lag. One GetMany: the key, its components and index keys (one shard, one hash tag), and each
 * region's `seen` time. The regions are the registry's active entries (the replicators register
 * them), or the ones the caller names.
 */
import type { TallyClient } from "./client.js";
import { checkRegion, componentIndexKey, componentKey, REGISTRY_PREFIX, registryKey, registryOrigin, seenKey } from "./region-keys.js";
import { encodeKey, type Key } from "./values.js";

export interface RegionComponent {
  region: string;
  /** The origin's value of the key as replicated here (0 when none arrived yet). */
  value: bigint;
  /** The origin shard's log index the value reflects (0: nothing replicated for the key). */
  originIndex: bigint;
  /** ms since the replicator last held every shard of the region complete; undefined before it first did. */
  lagMs: number | undefined;
}

export interface GlobalReadResult {
  /** The sum over regions: local + every component. */
  value: bigint;
  /** This region's own component (linearizable). */
  local: { value: bigint; version: bigint; appliedIndex: bigint };
  regions: RegionComponent[];
}

export interface RegionEntry {
  region: string;
  /** Part of global reads (1 in the registry); false after `tallyctl regions forget`. */
  active: boolean;
  /** Wall-clock ms of the replicator's last complete view of the region (0: never). */
  seenMs: number;
  lagMs: number | undefined;
}

const REGISTRY_MAX = 1_000;

/** The regions replicated into this cluster (registry entries), with their last complete time. */
export async function listRegions(client: TallyClient, nowMs = Date.now()): Promise<RegionEntry[]> {
  const registry = await client.topK(REGISTRY_PREFIX, REGISTRY_MAX);
  const entries: Array<{ region: string; active: boolean }> = [];
  for (const entry of registry.entries) {
    const region = registryOrigin(entry.key);
    if (region !== undefined) entries.push({ region, active: entry.value > 0n });
  }
  entries.sort((a, b) => (a.region < b.region ? -1 : a.region > b.region ? 1 : 0));
  const seen = entries.length === 0 ? [] : await client.getMany(entries.map((entry) => seenKey(entry.region)));
  return entries.map((entry, i) => {
    const seenMs = Number(seen[i]!.value);
    return { ...entry, seenMs, lagMs: seenMs === 0 ? undefined : Math.max(0, nowMs - seenMs) };
  });
}

/** Marks a region forgotten (0) or active (1) in the registry; its components stay as they are. */
export async function setRegionActive(client: TallyClient, region: string, active: boolean): Promise<void> {
  await client.set(registryKey(checkRegion(region)), active ? 1n : 0n);
}

/** See the file header. `regions`: read these regions' components instead of the registry's active ones. */
export async function globalGet(client: TallyClient, key: Key, options: { regions?: string[] } = {}): Promise<GlobalReadResult> {
  const encoded = encodeKey(key);
  const regions =
    options.regions?.map((region) => checkRegion(region)) ??
    (await listRegions(client)).filter((entry) => entry.active).map((entry) => entry.region);
  const keys = [encoded];
  for (const region of regions) keys.push(componentKey(region, encoded), componentIndexKey(region, encoded), seenKey(region));
  const read = await client.getMany(keys);
  const nowMs = Date.now();
  const local = read[0]!;
  let value = local.value;
  const components = regions.map((region, i) => {
    const [component, index, seen] = [read[1 + 3 * i]!, read[2 + 3 * i]!, read[3 + 3 * i]!];
    value += component.value;
    const seenMs = Number(seen.value);
    return { region, value: component.value, originIndex: index.value, lagMs: seenMs === 0 ? undefined : Math.max(0, nowMs - seenMs) };
  });
  return { value, local: { value: local.value, version: local.version, appliedIndex: local.appliedIndex }, regions: components };
}
