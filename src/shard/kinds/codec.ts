/**
 * Moved to src/kinds/codec.ts: pure code that the client uses too, so it sits below both src/shard
 * and src/client. This re-export keeps the importers outside src/shard/kinds (state-machine.ts,
 * kind-table.ts, commands.ts, src/server) working until they import src/kinds directly.
 */
export * from "../../kinds/codec.js";
