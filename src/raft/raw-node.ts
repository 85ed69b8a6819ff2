/**
 * RawNode: the public face of the Raft core (etcd-io/raft rawnode.go). Synchronous, deterministic,
 * I/O-free. SKELETON: signatures are final; bodies are being filled in.
 */
import type { ConfChange, ConfState, Message, NodeId, RaftConfig, RaftStatus, Ready } from "./types.js";
import type { MemoryStorage } from "./memory-storage.js";

export { encodeConfChange, decodeConfChange } from "./confchange-codec.js";

const notYet = (): never => {
  throw new Error("raft core: not implemented yet");
};

export class RawNode {
  constructor(config: RaftConfig) {
    void config;
  }

  static bootstrap(storage: MemoryStorage, voters: NodeId[]): void {
    void storage;
    void voters;
    notYet();
  }

  tick(): void {
    notYet();
  }
  campaign(): void {
    notYet();
  }
  propose(data: Uint8Array): void {
    void data;
    notYet();
  }
  proposeConfChange(cc: ConfChange): void {
    void cc;
    notYet();
  }
  applyConfChange(cc: ConfChange): ConfState {
    void cc;
    return notYet();
  }
  step(message: Message): void {
    void message;
    notYet();
  }
  readIndex(context: Uint8Array): void {
    void context;
    notYet();
  }
  transferLeader(transferee: NodeId): void {
    void transferee;
    notYet();
  }
  reportUnreachable(id: NodeId): void {
    void id;
    notYet();
  }
  reportSnapshot(id: NodeId, ok: boolean): void {
    void id;
    void ok;
    notYet();
  }
  hasReady(): boolean {
    return notYet();
  }
  ready(): Ready {
    return notYet();
  }
  advance(): void {
    notYet();
  }
  status(): RaftStatus {
    return notYet();
  }
  leaseValid(): boolean {
    return notYet();
  }
}
