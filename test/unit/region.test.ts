/**
 * Multi-region pieces that need no cluster (docs/regions.md): the apply guard and its reduction of
 * a batch (duplicates and reordering), the reserved key layout (a component and its index share a
 * slot, whatever the origin), and the region: / regions: settings of cluster.yaml. The guarded
 * apply against a real cluster, replays included, is in test/integration/regions.test.ts.
 */
import { describe, expect, it } from "vitest";
import { isNewer, newestPerKey, type ComponentUpdate } from "../../src/client/region-apply.js";
import {
  checkRegion,
  componentIndexKey,
  componentKey,
  componentPrefix,
  componentUserKey,
  cursorKey,
  isReserved,
  maxReplicatedKeyBytes,
  registryKey,
  registryOrigin,
  seenKey,
} from "../../src/client/region-keys.js";
import { slotOf } from "../../src/meta/slots.js";
import { ConfigError, parseClusterConfig } from "../../src/server/config/config.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { parseRegionSettings } from "../../src/util/region-config.js";

const update = (key: string, value: bigint, index: bigint): ComponentUpdate => ({ key: Buffer.from(key), value, index });

describe("the apply guard", () => {
  it("keeps the newest update per key, whatever the order and the duplicates", () => {
    const batch = [update("a", 1n, 5n), update("b", 7n, 6n), update("a", 3n, 9n), update("a", 2n, 7n), update("b", 7n, 6n)];
    expect(newestPerKey(batch)).toEqual([update("a", 3n, 9n), update("b", 7n, 6n)]);
    expect(newestPerKey([...batch].reverse())).toEqual([update("b", 7n, 6n), update("a", 3n, 9n)]);
  });

  it("applies only above the held index: a replay or a late arrival is not newer", () => {
    expect(isNewer(0n, update("a", 0n, 1n))).toBe(true);
    expect(isNewer(9n, update("a", 3n, 9n))).toBe(false);
    expect(isNewer(9n, update("a", 2n, 7n))).toBe(false);
    expect(isNewer(9n, update("a", -4n, 10n))).toBe(true);
  });
});

describe("region keys", () => {
  it("puts a key's component and index, from every origin, in one slot", () => {
    for (const key of ["likes:1", "{tag}x", "}{", "a}b{c", "\u00ff\u0000"]) {
      const bytes = Buffer.from(key, "latin1");
      const slots = new Set(
        ["east", "w", "north-2"].flatMap((origin) => [slotOf(componentKey(origin, bytes)), slotOf(componentIndexKey(origin, bytes))]),
      );
      expect(slots.size).toBe(1);
    }
  });

  it("keeps every key reserved, and leaves room for the longest replicated key", () => {
    const key = Buffer.alloc(maxReplicatedKeyBytes("east"), 0x61);
    expect(componentKey("east", key).length).toBe(256);
    for (const made of [
      componentKey("east", key),
      componentIndexKey("east", key),
      cursorKey("east", 3),
      seenKey("east"),
      registryKey("east"),
    ])
      expect(isReserved(made)).toBe(true);
    expect(isReserved(Buffer.from("likes:1"))).toBe(false);
    expect(registryOrigin(registryKey("east"))).toBe("east");
    expect(registryOrigin(Buffer.from("east"))).toBeUndefined();
  });

  it("finds the user key back from a component key", () => {
    const key = Buffer.from("a}b{c:1");
    expect(componentUserKey("east", componentKey("east", key))).toEqual(key);
    expect(componentUserKey("west", componentKey("east", key))).toBeUndefined();
    expect(componentUserKey("east", componentIndexKey("east", key))).toBeUndefined();
    expect(componentPrefix("east").length).toBeLessThan(componentKey("east", key).length);
  });

  it("refuses a bad region name", () => {
    for (const name of ["", "East", "-x", "a_b", "x".repeat(17), "a:b"]) expect(() => checkRegion(name)).toThrow(InvalidArgumentError);
    expect(checkRegion("eu-west-1")).toBe("eu-west-1");
  });
});

describe("cluster.yaml region settings", () => {
  const where = (field: string) => `f: ${field}`;
  const node = (id: number) => ({ id, client: `127.0.0.1:${7000 + id}`, peer: `127.0.0.1:${8000 + id}`, dataDir: `/tmp/n${id}` });
  const base = { cluster: { replicationFactor: 1, shards: 1 }, nodes: [node(1)] };

  it("parses region and regions, addressMap included", () => {
    const settings = parseRegionSettings(
      { region: "east", regions: [{ name: "west", endpoints: ["10.0.0.1:7001"], addressMap: { "10.0.0.1:7001": "127.0.0.1:9001" } }] },
      where,
    );
    expect(settings).toEqual({
      region: "east",
      regions: [{ name: "west", endpoints: ["10.0.0.1:7001"], addressMap: { "10.0.0.1:7001": "127.0.0.1:9001" } }],
    });
    expect(parseRegionSettings({}, where)).toBeUndefined();
    expect(parseClusterConfig({ ...base, region: "east", regions: [{ name: "west", endpoints: ["h:1"] }] }).regions?.region).toBe("east");
  });

  it("refuses bad settings, naming the field", () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ regions: [] }, "f: region"],
      [{ region: "east", regions: [{ name: "east", endpoints: ["h:1"] }] }, "this cluster's own region"],
      [
        {
          region: "east",
          regions: [
            { name: "w", endpoints: ["h:1"] },
            { name: "w", endpoints: ["h:2"] },
          ],
        },
        "listed twice",
      ],
      [{ region: "east", regions: [{ name: "w", endpoints: [] }] }, "f: regions[0].endpoints"],
      [{ region: "east", regions: [{ name: "w", endpoints: ["nope"] }] }, "f: regions[0].endpoints[0]"],
      [{ region: "east", regions: [{ name: "w", endpoints: ["h:1"], tls: true }] }, "regions[0].tls: unknown field"],
      [{ region: "east", regions: {} }, "must be a list"],
    ];
    for (const [document, fragment] of cases) expect(() => parseRegionSettings(document, where)).toThrow(fragment);
    expect(() => parseClusterConfig({ ...base, region: "Bad" })).toThrow(ConfigError);
  });
});

describe("client options for regions", () => {
  it("refuses a bad addressMap and a bad watch slot", async () => {
    const { TallyClient } = await import("../../src/client/index.js");
    expect(() => new TallyClient({ endpoints: ["127.0.0.1:1"], addressMap: { nope: "127.0.0.1:2" } })).toThrow(InvalidArgumentError);
    const client = new TallyClient({ endpoints: ["127.0.0.1:1"], addressMap: { "10.0.0.1:7001": "127.0.0.1:2" } });
    try {
      await expect(client.watch("", { prefix: true, slot: 16_384 }).next()).rejects.toThrow(/slot must be an integer/);
    } finally {
      await client.close();
    }
  });
});
