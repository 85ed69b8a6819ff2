/**
 * tally's public API: what users import (nats.js mod.ts style). Internals stay unexported.
 */
export * from "./client/index.js";
