/** The Raft core's public surface. Everything else in src/raft is internal. */
export * from "./types.js";
export { RawNode, encodeConfChange, decodeConfChange, campaignTransferContext, BOOTSTRAP_TERM, MAX_PENDING_READS } from "./raw-node.js";
export { MemoryStorage } from "./memory-storage.js";
export { validateConfig } from "./config.js";
