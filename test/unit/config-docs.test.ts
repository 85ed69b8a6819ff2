import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { CONFIGURATION_DOC, renderConfigurationDoc } from "../../scripts/gen-config-docs.js";
import { parseClusterConfig } from "../../src/server/config/config.js";
import { CLUSTER_SPECS, CONFIG_SETTINGS, LIMITS_SPECS, PLACEMENT_SPECS, childFields } from "../../src/server/config/config-settings.js";

describe("docs/configuration.md is generated from the validator's settings table", () => {
  test("it is up to date (else: npx tsx scripts/gen-config-docs.ts)", () => {
    expect(readFileSync(CONFIGURATION_DOC, "utf8"), "docs/configuration.md is stale: run npx tsx scripts/gen-config-docs.ts").toBe(
      renderConfigurationDoc(),
    );
  });

  test("the defaults it documents are the ones the validator applies", () => {
    const config = parseClusterConfig({ nodes: [1, 2, 3].map((id) => ({ id, client: `h${id}:7000`, peer: `h${id}:7100` })) });
    for (const [section, specs] of [
      ["cluster", CLUSTER_SPECS],
      ["limits", LIMITS_SPECS],
      ["placement", PLACEMENT_SPECS],
    ] as const) {
      for (const [key, spec] of Object.entries(specs)) {
        const actual = (config[section] as unknown as Record<string, unknown>)[key];
        if ("default" in spec) expect(actual, `${section}.${key}`).toBe(spec.default);
      }
    }
  });

  test("every documented node field is one the validator accepts, and every accepted one is documented", () => {
    const documented = childFields("nodes[]");
    const full = {
      id: 1,
      client: "h:1",
      peer: "h:2",
      clientListen: "0.0.0.0:3",
      peerListen: "0.0.0.0:4",
      metrics: "h:5",
      metricsListen: "0.0.0.0:6",
      zone: "z",
      host: "machine-1",
      dataDir: "/d",
    };
    expect(Object.keys(full).sort()).toEqual(documented.filter((field) => field !== "cert" && field !== "key").sort());
    expect(() => parseClusterConfig({ cluster: { replicationFactor: 1 }, nodes: [full] })).not.toThrow();
    expect(CONFIG_SETTINGS.every((spec) => spec.meaning.length > 10)).toBe(true);
  });
});
