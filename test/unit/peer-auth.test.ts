/**
 * The peer handshake and frame MACs (src/transport/peer-auth.ts) without a network: both ends
 * derive the same keys only from the same secret, nonces, node ids and RPC; a frame verifies only
 * once, in order, unaltered, on the call it was made for.
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import {
  type AcceptedCall,
  FrameMac,
  PEER_FROM_HEADER,
  PEER_NONCE_HEADER,
  PEER_PROOF_HEADER,
  PeerAuthenticator,
  PeerAuthError,
  type PeerRpc,
  snapshotChunkFields,
} from "../../src/transport/peer-auth.js";
import { generateToken } from "../../src/util/auth-token.js";

const SECRET = generateToken();
const payload = (text: string) => new TextEncoder().encode(text);

/** A complete handshake between dialer and listener; returns both ends' MACs. */
function handshake(options: { dialerSecret?: string; listenerSecret?: string; rpc?: PeerRpc; dialer?: number; listener?: number } = {}): {
  sender: FrameMac;
  receiver: FrameMac;
  accepted: AcceptedCall;
} {
  const { dialerSecret = SECRET, listenerSecret = SECRET, rpc = "raft", dialer = 1, listener = 2 } = options;
  const dial = new PeerAuthenticator(dialerSecret).dial(rpc, dialer, listener);
  const accepted = new PeerAuthenticator(listenerSecret).accept(rpc, listener, dial.metadata);
  return { sender: dial.finish(accepted.answer), receiver: accepted.frames, accepted };
}

describe("peer handshake", () => {
  it("proves the secret both ways: the listener's proof checks out and frames verify in order", () => {
    const { sender, receiver, accepted } = handshake();
    expect(accepted.dialer).toBe(1);
    for (let i = 0; i < 5; i++) {
      const frame = payload(`frame ${i}`);
      expect(receiver.verify(sender.sign(frame), frame)).toBe(true);
    }
    expect(receiver.frames).toBe(5);
  });

  it("a listener with another secret fails the dialer's check; a dialer with another secret fails every frame", () => {
    const dial = new PeerAuthenticator(SECRET).dial("raft", 1, 2);
    const impostor = new PeerAuthenticator(generateToken()).accept("raft", 2, dial.metadata);
    expect(() => dial.finish(impostor.answer)).toThrow(PeerAuthError);
    expect(() => dial.finish(impostor.answer)).toThrow(/failed to prove it holds the cluster secret/);

    // A dialer that ignores the listener's proof still cannot make a frame the listener accepts.
    const forger = new PeerAuthenticator(generateToken()).dial("raft", 1, 2);
    const listener = new PeerAuthenticator(SECRET).accept("raft", 2, forger.metadata);
    const forgerKeys = new PeerAuthenticator(generateToken()).keys(
      "raft",
      1,
      2,
      forger.metadata.get(PEER_NONCE_HEADER)[0] as Buffer,
      listener.answer.get(PEER_NONCE_HEADER)[0] as Buffer,
    );
    const frame = payload("set secret:raft 1337");
    expect(listener.frames.verify(new FrameMac(forgerKeys.frame).sign(frame), frame)).toBe(false);
  });

  it("refuses a tampered frame, a tampered, short or missing MAC", () => {
    const frame = payload("App term 27 index 41");
    const cases: Array<(sender: FrameMac) => [Uint8Array | undefined, Uint8Array]> = [
      (sender) => {
        const mac = sender.sign(frame);
        const altered = frame.slice();
        altered[4]! ^= 1;
        return [mac, altered];
      },
      (sender) => {
        const mac = sender.sign(frame);
        mac[0]! ^= 0x80;
        return [mac, frame];
      },
      (sender) => [sender.sign(frame).subarray(0, 16), frame],
      () => [undefined, frame],
      () => [new Uint8Array(0), frame],
    ];
    for (const [i, make] of cases.entries()) {
      const { sender, receiver } = handshake();
      const [mac, bytes] = make(sender);
      expect(receiver.verify(mac, bytes), `case ${i}`).toBe(false);
    }
  });

  it("refuses a replayed or reordered frame on the same call", () => {
    const { sender, receiver } = handshake();
    const first = payload("first");
    const second = payload("second");
    const firstMac = sender.sign(first);
    expect(receiver.verify(firstMac, first)).toBe(true);
    expect(receiver.verify(firstMac, first)).toBe(false); // replayed as frame 1

    const reordered = handshake();
    const a = reordered.sender.sign(first);
    const b = reordered.sender.sign(second);
    expect(reordered.receiver.verify(b, second)).toBe(false); // frame 1 arriving as frame 0
    expect(reordered.receiver.verify(a, first)).toBe(false);
  });

  it("refuses a frame recorded on another call, another node pair or the other RPC", () => {
    const frame = payload("heartbeat");
    const recorded = handshake().sender.sign(frame);
    expect(handshake().receiver.verify(recorded, frame)).toBe(false); // same ids, fresh nonces
    for (const other of [{ dialer: 3 }, { listener: 3 }, { rpc: "snapshot" as const }]) {
      const { sender, receiver } = handshake(other);
      expect(receiver.verify(sender.sign(frame), frame)).toBe(true);
    }
    // Same nonces, different binding: the keys differ.
    const auth = new PeerAuthenticator(SECRET);
    const nonces = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)] as const;
    const keys = [
      auth.keys("raft", 1, 2, ...nonces),
      auth.keys("raft", 3, 2, ...nonces),
      auth.keys("raft", 1, 3, ...nonces),
      auth.keys("snapshot", 1, 2, ...nonces),
    ];
    const distinct = new Set(keys.flatMap((k) => [k.frame.toString("hex"), k.listenerProof.toString("hex")]));
    expect(distinct.size).toBe(keys.length * 2);
    expect(auth.keys("raft", 1, 2, ...nonces).frame.equals(keys[0]!.frame)).toBe(true);
  });

  it("binds the claimed ids: a dialer that claims another id, or reaches another node, fails the handshake", () => {
    const dial = new PeerAuthenticator(SECRET).dial("raft", 1, 2);
    dial.metadata.set(PEER_FROM_HEADER, "3"); // rewritten in flight
    const listener = new PeerAuthenticator(SECRET).accept("raft", 2, dial.metadata);
    expect(listener.dialer).toBe(3);
    expect(() => dial.finish(listener.answer)).toThrow(PeerAuthError);

    const toTwo = new PeerAuthenticator(SECRET).dial("raft", 1, 2);
    const nodeThree = new PeerAuthenticator(SECRET).accept("raft", 3, toTwo.metadata); // node 3 at node 2's address
    expect(() => toTwo.finish(nodeThree.answer)).toThrow(/node 2 failed to prove/);
  });

  it("refuses calls without or with malformed handshake headers", () => {
    const listener = new PeerAuthenticator(SECRET);
    const valid = () => new PeerAuthenticator(SECRET).dial("raft", 1, 2).metadata;
    expect(() => listener.accept("raft", 2, new grpc.Metadata())).toThrow(/no valid tally-peer-from/);
    const noNonce = valid();
    noNonce.remove(PEER_NONCE_HEADER);
    expect(() => listener.accept("raft", 2, noNonce)).toThrow(/sent no tally-peer-nonce-bin/);
    const shortNonce = valid();
    shortNonce.set(PEER_NONCE_HEADER, Buffer.alloc(16));
    expect(() => listener.accept("raft", 2, shortNonce)).toThrow(/malformed tally-peer-nonce-bin/);
    for (const from of ["0", "n1", "-1", "1e3", ""]) {
      const bad = valid();
      bad.set(PEER_FROM_HEADER, from);
      expect(() => listener.accept("raft", 2, bad), from).toThrow(PeerAuthError);
    }
    // A listener without the secret answers with no proof: the dialer refuses it.
    const dial = new PeerAuthenticator(SECRET).dial("raft", 1, 2);
    expect(() => dial.finish(new grpc.Metadata())).toThrow(/sent no tally-peer-nonce-bin/);
    const noProof = new grpc.Metadata();
    noProof.set(PEER_NONCE_HEADER, Buffer.alloc(32));
    expect(() => dial.finish(noProof)).toThrow(new RegExp(`sent no ${PEER_PROOF_HEADER}`));
  });

  it("refuses a secret shorter than 32 characters", () => {
    expect(() => new PeerAuthenticator("short-secret")).toThrow(/at least 32 characters/);
  });

  it("snapshot chunk fields encode every field unambiguously", () => {
    const base = snapshotChunkFields(7, 0, false, 0xdeadbeef, 10);
    const variants = [
      snapshotChunkFields(8, 0, false, 0xdeadbeef, 10),
      snapshotChunkFields(7, 2 ** 32, false, 0xdeadbeef, 10),
      snapshotChunkFields(7, 1, false, 0xdeadbeef, 10),
      snapshotChunkFields(7, 0, true, 0xdeadbeef, 10),
      snapshotChunkFields(7, 0, false, 0xdeadbeee, 10),
      snapshotChunkFields(7, 0, false, 0xdeadbeef, 11),
    ];
    for (const variant of variants) expect(variant.equals(base)).toBe(false);
    expect(new Set(variants.map((v) => v.toString("hex"))).size).toBe(variants.length);
  });
});
