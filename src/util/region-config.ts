/**
 * The `region:` and `regions:` keys of cluster.yaml (docs/regions.md): this cluster's region name
 * and the other regions whose components it replicates. Pure and shared by tallyd's config loader
 * (which checks them, so a bad file fails at start) and tallyctl's `regions replicate` (which uses
 * them); neither may import the other's layer.
 */

/** A region name: 1..16 of [a-z0-9-], starting with a letter or digit (it is part of reserved keys). */
export const REGION_NAME = /^[a-z0-9][a-z0-9-]{0,15}$/;

export interface RemoteRegion {
  name: string;
  /** The other region's client endpoints, host:port. */
  endpoints: string[];
  /**
   * Advertised address -> address to dial, for a region reached through a tunnel, NAT or proxy
   * (its routes name the addresses its nodes advertise).
   */
  addressMap?: Record<string, string>;
}

export interface RegionSettings {
  /** This cluster's region. */
  region: string;
  regions: RemoteRegion[];
}

const HOST_PORT = /^[^\s,]+:\d{1,5}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function checkRegionName(name: unknown, where: string): string {
  if (typeof name !== "string" || !REGION_NAME.test(name))
    throw new Error(`${where}: a region name is 1..16 of a-z, 0-9 and '-' (not starting with '-'), got ${JSON.stringify(name)}`);
  return name;
}

function hostPort(value: unknown, where: string): string {
  if (typeof value !== "string" || !HOST_PORT.test(value)) throw new Error(`${where}: must be host:port, got ${JSON.stringify(value)}`);
  return value;
}

function parseRemote(raw: unknown, where: string): RemoteRegion {
  if (!isObject(raw)) throw new Error(`${where}: must be a mapping with name and endpoints`);
  for (const field of Object.keys(raw))
    if (!["name", "endpoints", "addressMap"].includes(field))
      throw new Error(`${where}.${field}: unknown field (name, endpoints, addressMap)`);
  const name = checkRegionName(raw.name, `${where}.name`);
  if (!Array.isArray(raw.endpoints) || raw.endpoints.length === 0)
    throw new Error(`${where}.endpoints: must be a non-empty list of host:port`);
  const endpoints = raw.endpoints.map((endpoint, i) => hostPort(endpoint, `${where}.endpoints[${i}]`));
  const remote: RemoteRegion = { name, endpoints };
  if (raw.addressMap !== undefined) {
    if (!isObject(raw.addressMap)) throw new Error(`${where}.addressMap: must be a mapping host:port -> host:port`);
    const map: Record<string, string> = {};
    for (const [from, to] of Object.entries(raw.addressMap))
      map[hostPort(from, `${where}.addressMap key`)] = hostPort(to, `${where}.addressMap.${from}`);
    remote.addressMap = map;
  }
  return remote;
}

/**
 * Parses `region` and `regions` from a cluster.yaml document; undefined when neither is present.
 * Throws an Error naming the field for anything wrong (`where` prefixes the message).
 */
export function parseRegionSettings(document: Record<string, unknown>, where: (field: string) => string): RegionSettings | undefined {
  if (document.region === undefined && document.regions === undefined) return undefined;
  const region = checkRegionName(document.region, where("region"));
  const list = document.regions ?? [];
  if (!Array.isArray(list)) throw new Error(`${where("regions")}: must be a list of {name, endpoints}`);
  const regions = list.map((raw, i) => parseRemote(raw, where(`regions[${i}]`)));
  const seen = new Set<string>([region]);
  for (const [i, remote] of regions.entries()) {
    if (seen.has(remote.name))
      throw new Error(
        `${where(`regions[${i}].name`)}: ${remote.name} is ${remote.name === region ? "this cluster's own region" : "listed twice"}`,
      );
    seen.add(remote.name);
  }
  return { region, regions };
}
