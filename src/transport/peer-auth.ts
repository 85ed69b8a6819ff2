/**
 * Peer authentication without TLS: every call on the peer port (a Raft stream or a Snapshot
 * upload) proves that both ends hold the cluster secret, binds the node ids both ends claim, and
 * carries a MAC on every frame. Without it, anyone who reaches the peer port can speak as a node:
 * an App in the leader's name is appended, committed and applied (docs/security.md).
 *
 * Per call, in gRPC metadata (so no round trip is added to a stream that gRPC opens anyway):
 *
 *   dialer   -> listener   call headers       tally-peer-from: D      tally-peer-nonce-bin: Nd
 *   listener -> dialer     response headers   tally-peer-nonce-bin: Nl  tally-peer-proof-bin: P
 *
 *   key(purpose) = HKDF-SHA256(ikm = secret, salt = Nd || Nl, info = "tally-peer v1 <rpc> D>L <purpose>")
 *   P            = key("listener proof")
 *   MAC_i        = HMAC-SHA256(key("frame"), u64be(i) || frame fields)    for frame i = 0, 1, ... of the call
 *
 * Nd and Nl are 32 fresh random bytes per call. The dialer writes nothing until P checks out (the
 * listener holds the secret and is node L, not whoever answers at L's address); the listener
 * checks each frame's MAC before decoding it, and the first frame's MAC is the dialer's answer
 * to the challenge Nl (it holds the secret and is node D). The first failure ends the call.
 *
 * Why a forged, spliced or replayed frame fails:
 * - without the secret no key can be derived (it is the HKDF input; a generated token carries 256
 *   random bits, and a short one is refused);
 * - a fresh Nl per call makes the keys of every call different, so a frame recorded on one call
 *   (or on another node pair, or on the other RPC: D, L and rpc are in `info`) fails on any other;
 * - the implicit frame number i makes a replayed, reordered or dropped frame within a call fail:
 *   gRPC delivers a call's frames in order and complete, so both ends count alike;
 * - P is derived with its own purpose, so a listener's proof is never a valid frame MAC.
 *
 * What it does not do: hide the traffic (it is plaintext; use `tls:` for confidentiality), or stop
 * an attacker on the path from dropping or delaying frames (Raft tolerates both).
 */
import * as grpc from "@grpc/grpc-js";
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import type { NodeId } from "../raft/types.js";
import { assert } from "../util/assert.js";

/** The RPCs of proto/peer.proto; each derives its own keys. */
export type PeerRpc = "raft" | "snapshot";

export const PEER_NONCE_BYTES = 32;
export const PEER_MAC_BYTES = 32;
/** Shortest secret accepted: the internal token (src/server/config/auth.ts) has the same floor. */
export const PEER_SECRET_CHARS_MIN = 32;

export const PEER_FROM_HEADER = "tally-peer-from";
export const PEER_NONCE_HEADER = "tally-peer-nonce-bin";
export const PEER_PROOF_HEADER = "tally-peer-proof-bin";

const VERSION = "tally-peer v1";

/** A call or frame that failed peer authentication; the call is ended with UNAUTHENTICATED. */
export class PeerAuthError extends Error {
  override name = "PeerAuthError";
}

/** One metadata value as bytes of exactly `length`, or a PeerAuthError naming the header. */
function binaryHeader(metadata: grpc.Metadata, key: string, length: number, who: string): Buffer {
  const values = metadata.get(key);
  if (values.length === 0)
    throw new PeerAuthError(`${who} sent no ${key} (no peer authentication: is auth.internalTokenFile the same on every node?)`);
  const value = values[0];
  if (values.length !== 1 || !Buffer.isBuffer(value) || value.length !== length) throw new PeerAuthError(`${who} sent a malformed ${key}`);
  return value;
}

function nodeIdHeader(metadata: grpc.Metadata): NodeId {
  const values = metadata.get(PEER_FROM_HEADER);
  const value = values[0];
  if (values.length !== 1 || typeof value !== "string" || !/^[1-9]\d{0,14}$/.test(value)) {
    throw new PeerAuthError(
      `the dialer sent no valid ${PEER_FROM_HEADER} (no peer authentication: is auth.internalTokenFile the same on every node?)`,
    );
  }
  return Number(value);
}

/**
 * The MACs of one direction of one call. Frame i is the i-th sign() (sender) or verify()
 * (receiver); each call advances i, so both ends must see every frame, in order.
 */
export class FrameMac {
  private sequence = 0;
  private readonly sequenceBytes = Buffer.alloc(8);

  constructor(private readonly key: Buffer) {
    assert(key.length === 32, "frame key must be 32 bytes");
  }

  /** Frames signed or verified so far. */
  get frames(): number {
    return this.sequence;
  }

  /** The MAC of the next frame, made of `parts` in order. */
  sign(...parts: Uint8Array[]): Buffer {
    return this.next(parts);
  }

  /** True when `mac` is the next frame's MAC of `parts`. The frame counts either way. */
  verify(mac: Uint8Array | undefined, ...parts: Uint8Array[]): boolean {
    const expected = this.next(parts);
    return mac !== undefined && mac.length === PEER_MAC_BYTES && timingSafeEqual(expected, mac);
  }

  private next(parts: Uint8Array[]): Buffer {
    assert(Number.isSafeInteger(this.sequence + 1), "frame sequence overflow");
    this.sequenceBytes.writeUInt32BE(Math.floor(this.sequence / 0x1_0000_0000), 0);
    this.sequenceBytes.writeUInt32BE(this.sequence >>> 0, 4);
    this.sequence += 1;
    const hmac = createHmac("sha256", this.key).update(this.sequenceBytes);
    for (const part of parts) hmac.update(part);
    return hmac.digest();
  }
}

/** The dialer's half of one call: the headers to open it with, and the check of the answer. */
export class DialerHandshake {
  readonly metadata = new grpc.Metadata();
  private readonly nonce = randomBytes(PEER_NONCE_BYTES);

  constructor(
    private readonly auth: PeerAuthenticator,
    private readonly rpc: PeerRpc,
    private readonly dialer: NodeId,
    private readonly listener: NodeId,
  ) {
    this.metadata.set(PEER_FROM_HEADER, String(dialer));
    this.metadata.set(PEER_NONCE_HEADER, this.nonce);
  }

  /** Checks the listener's response headers; returns the MACs for this call's frames. Throws PeerAuthError. */
  finish(headers: grpc.Metadata): FrameMac {
    const who = `node ${this.listener}`;
    const listenerNonce = binaryHeader(headers, PEER_NONCE_HEADER, PEER_NONCE_BYTES, who);
    const proof = binaryHeader(headers, PEER_PROOF_HEADER, PEER_MAC_BYTES, who);
    const keys = this.auth.keys(this.rpc, this.dialer, this.listener, this.nonce, listenerNonce);
    if (!timingSafeEqual(keys.listenerProof, proof)) {
      throw new PeerAuthError(
        `${who} failed to prove it holds the cluster secret (a different auth.internalTokenFile, or another node at its address)`,
      );
    }
    return new FrameMac(keys.frame);
  }
}

export interface AcceptedCall {
  /** The id the dialer claims; proven by the first frame's MAC, not before. */
  dialer: NodeId;
  /** The response headers to send (the listener's nonce and proof). */
  answer: grpc.Metadata;
  frames: FrameMac;
}

export class PeerAuthenticator {
  private readonly secret: Buffer;

  /** `secret`: the cluster secret every node holds (auth.internalTokenFile's token). */
  constructor(secret: string) {
    assert(secret.length >= PEER_SECRET_CHARS_MIN, `the peer secret must have at least ${PEER_SECRET_CHARS_MIN} characters`);
    this.secret = Buffer.from(secret, "utf8");
  }

  /** Starts a call from `dialer` to `listener`. */
  dial(rpc: PeerRpc, dialer: NodeId, listener: NodeId): DialerHandshake {
    return new DialerHandshake(this, rpc, dialer, listener);
  }

  /**
   * The listener's half: reads the dialer's headers and makes the answer. The caller checks that
   * `dialer` is a peer before it answers. Throws PeerAuthError when the headers are missing or malformed.
   */
  accept(rpc: PeerRpc, listener: NodeId, headers: grpc.Metadata): AcceptedCall {
    const dialer = nodeIdHeader(headers);
    const dialerNonce = binaryHeader(headers, PEER_NONCE_HEADER, PEER_NONCE_BYTES, `node ${dialer}`);
    const listenerNonce = randomBytes(PEER_NONCE_BYTES);
    const keys = this.keys(rpc, dialer, listener, dialerNonce, listenerNonce);
    const answer = new grpc.Metadata();
    answer.set(PEER_NONCE_HEADER, listenerNonce);
    answer.set(PEER_PROOF_HEADER, keys.listenerProof);
    return { dialer, answer, frames: new FrameMac(keys.frame) };
  }

  /** The keys of one call: both ends derive them alike from the secret and both nonces. */
  keys(
    rpc: PeerRpc,
    dialer: NodeId,
    listener: NodeId,
    dialerNonce: Buffer,
    listenerNonce: Buffer,
  ): { frame: Buffer; listenerProof: Buffer } {
    const salt = Buffer.concat([dialerNonce, listenerNonce]);
    const derive = (purpose: string) =>
      Buffer.from(hkdfSync("sha256", this.secret, salt, `${VERSION} ${rpc} ${dialer}>${listener} ${purpose}`, 32));
    return { frame: derive("frame"), listenerProof: derive("listener proof") };
  }
}

/** The fixed fields of a snapshot chunk, as its MAC covers them (the header and data follow). */
export function snapshotChunkFields(groupId: number, offset: number, last: boolean, crc32c: number, headerBytes: number): Buffer {
  const fields = Buffer.alloc(4 + 8 + 1 + 4 + 4);
  fields.writeUInt32BE(groupId, 0);
  fields.writeUInt32BE(Math.floor(offset / 0x1_0000_0000), 4);
  fields.writeUInt32BE(offset >>> 0, 8);
  fields.writeUInt8(last ? 1 : 0, 12);
  fields.writeUInt32BE(crc32c >>> 0, 13);
  fields.writeUInt32BE(headerBytes, 17);
  return fields;
}
