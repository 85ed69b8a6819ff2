/**
 * The layering of docs/architecture.md ("Layers"), checked on the real import graph: static
 * imports, re-exports, dynamic `import()`, and type-only imports (`import type`, `import("x").T`)
 * all count. Dependencies point down; src/raft, src/shard, src/kinds and src/meta stay pure (no node:*
 * module, no I/O package), which is what makes the simulator possible; no import cycles.
 *
 *   npm run lint:layers          (also run by test/unit/layering.test.ts, so `npm test` checks it)
 *
 * The other half of purity (no clock, timers, Math.random or process in the deterministic core)
 * is about globals, not imports: eslint.config.js checks it.
 */

/** Which src/ folders each folder may import from (itself always allowed). */
const allowed = {
  util: [],
  raft: ["util"],
  // kinds: the pure code of the counter kinds that the client needs too (HyperLogLog, top-K and
  // aggregate merges, their encodings), below both src/shard and src/client so both agree.
  kinds: ["util"],
  shard: ["util", "raft", "kinds"],
  meta: ["util"],
  storage: ["util", "raft"],
  transport: ["util", "raft", "storage"],
  api: ["util"],
  server: ["util", "raft", "kinds", "shard", "meta", "storage", "transport", "api"],
  // kinds: the client merges the shards' answers (HyperLogLog registers, mergeTopK,
  // mergeAggregates) with the same pure code that produced them (src/kinds), so both agree.
  client: ["util", "api", "meta", "kinds"],
  cli: ["util", "api", "meta", "client"],
};

/**
 * Single files allowed one more layer. src/cli/backup.ts: `tallyctl restore` builds a new
 * cluster's data directories offline with the node's own config loader, storage and snapshot code
 * (src/server/backup/restore.ts), and `tallyctl backup` writes the manifest format that restore reads.
 */
const fileExceptions = {
  "src/cli/backup.ts": ["server"],
  // Pending: src/shard/binary.ts (ByteReader/ByteWriter, INT64) and src/shard/keys.ts
  // (describeKey) are pure util-level code; once they move to src/util these two go.
  "src/kinds/codec.ts": ["shard"],
  "src/kinds/topk.ts": ["shard"],
};

/** Deterministic layers: no node:* module and no package that does I/O. */
const pure = ["raft", "shard", "meta", "kinds"];
/** The only packages the pure layers may import: msgpackr encodes commands in memory. */
const purePackages = ["msgpackr"];

/**
 * Known cycles, each a pending piece of the node-core rebuild. Listed by the modules on the cycle;
 * remove an entry when its cycle is gone (depcruise then stays quiet: nothing else matches it).
 */
const knownCycles = [];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const layers = Object.keys(allowed);

module.exports = {
  forbidden: [
    ...layers.map((layer) => {
      const exceptions = Object.entries(fileExceptions).filter(([file]) => file.startsWith(`src/${layer}/`));
      return {
        name: `layer-${layer}`,
        comment: `src/${layer} may import only ${["itself", ...allowed[layer]].join(", ")} (docs/architecture.md, "Layers")`,
        severity: "error",
        from: { path: `^src/${layer}/`, ...(exceptions.length > 0 ? { pathNot: exceptions.map(([file]) => `^${escape(file)}$`) } : {}) },
        to: { path: "^src/", pathNot: `^src/(${[layer, ...allowed[layer]].join("|")})/` },
      };
    }),
    ...Object.entries(fileExceptions).map(([file, extra]) => {
      const layer = file.split("/")[1];
      return {
        name: `layer-exception-${file.replace(/[/.]/g, "-")}`,
        comment: `${file} may import ${["its own layer", ...allowed[layer], ...extra].join(", ")}`,
        severity: "error",
        from: { path: `^${escape(file)}$` },
        to: { path: "^src/", pathNot: `^src/(${[layer, ...allowed[layer], ...extra].join("|")})/` },
      };
    }),
    {
      name: "layer-unknown",
      comment: "every folder of src/ has a rule in .dependency-cruiser.cjs (and a row in docs/architecture.md)",
      severity: "error",
      from: { path: "^src/[^/]+/", pathNot: `^src/(${layers.join("|")})/` },
      to: {},
    },
    {
      name: "util-no-grpc",
      comment: "src/util is the bottom layer: no gRPC (credentials live in src/transport, src/client and src/server)",
      severity: "error",
      from: { path: "^src/util/" },
      to: { path: "(^|/)node_modules/@grpc/" },
    },
    {
      name: "public-surface",
      comment: "src/index.ts is the public API: it re-exports src/client only",
      severity: "error",
      from: { path: "^src/index\\.ts$" },
      to: { path: "^src/", pathNot: "^src/client/" },
    },
    {
      name: "src-stays-in-src",
      comment: "src/ does not import tests, benchmarks, scripts or anything else outside src/",
      severity: "error",
      from: { path: "^src/" },
      to: {
        path: "^(?!src/)",
        couldNotResolve: false,
        dependencyTypesNot: ["core", "npm", "npm-dev", "npm-optional", "npm-peer", "npm-bundled", "npm-no-pkg", "npm-unknown"],
      },
    },
    {
      name: "pure-no-node-modules",
      comment: "src/raft, src/shard and src/meta are deterministic: no node:* module (time comes in as ticks and entry timestamps)",
      severity: "error",
      from: { path: `^src/(${pure.join("|")})/` },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "pure-no-io-packages",
      comment: `src/raft, src/shard and src/meta import no package but ${purePackages.join(", ")}`,
      severity: "error",
      from: { path: `^src/(${pure.join("|")})/` },
      to: {
        dependencyTypes: ["npm", "npm-dev", "npm-optional", "npm-peer", "npm-bundled", "npm-no-pkg", "npm-unknown"],
        pathNot: `^node_modules/(${purePackages.map(escape).join("|")})/`,
      },
    },
    {
      name: "no-circular",
      comment: "no import cycles in src/ (known ones, pending the node-core rebuild, are listed in knownCycles)",
      severity: "error",
      from: { path: "^src/", ...(knownCycles.length > 0 ? { pathNot: knownCycles } : {}) },
      to: { circular: true },
    },
    {
      name: "not-to-unresolvable",
      comment: "every import resolves (a typo or a moved file is a lint error, not a runtime one)",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|data|bench/results)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
