/**
 * asyncStorageWrites (the driver loop writes one batch while it steps acknowledgements and builds
 * the next): a leader counts its own log toward commit only up to what RawNode.persisted() said
 * is durable, so an entry acknowledged by one follower of three is not committed while the
 * leader's own write of it is still in flight.
 */
import { describe, expect, it } from "vitest";
import { Cluster } from "./raft-harness.js";

function cluster(asyncStorageWrites: boolean): Cluster {
  const c = new Cluster([1, 2, 3], { asyncStorageWrites });
  expect(c.elect(1)).toBe(1); // the no-op (index 2) commits on the two followers' acks
  c.cutLink(1, 3); // from now on only node 2 acknowledges
  c.propose(1, "x"); // index 3
  c.stabilize();
  expect(c.get(2).storage.lastIndex()).toBe(3);
  return c;
}

describe("raft with asyncStorageWrites", () => {
  it("does not commit on one follower's ack until the leader's own entry is persisted", () => {
    const c = cluster(true);
    const leader = c.get(1).node;
    expect(leader.commitIndex).toBe(2);
    expect(c.get(1).appliedData()).toEqual([]);

    leader.persisted(3, 1); // another term's entry at index 3: not ours, ignored
    expect(leader.commitIndex).toBe(2);

    leader.persisted(3, leader.term);
    expect(leader.commitIndex).toBe(3);
    c.stabilize();
    expect(c.get(1).appliedData()).toEqual(["x"]);
    expect(c.get(2).appliedData()).toEqual(["x"]);
  });

  it("without it, the leader counts its entry when it appends it (the driver steps nothing before the write)", () => {
    const c = cluster(false);
    expect(c.get(1).node.commitIndex).toBe(3);
  });

  it("persisted() on a follower changes nothing", () => {
    const c = cluster(true);
    const follower = c.get(2).node;
    const before = follower.commitIndex;
    follower.persisted(3, follower.term);
    expect(follower.commitIndex).toBe(before);
    expect(follower.hasReady()).toBe(false);
  });
});
