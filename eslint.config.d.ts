/** The types of eslint.config.js, for the TypeScript that imports it (test/unit/layering.test.ts). */
import type { Linter } from "eslint";

/** The rules that keep src/raft, src/shard and src/meta deterministic (no type information needed). */
export declare const determinism: Linter.Config[];

declare const config: Linter.Config[];
export default config;
