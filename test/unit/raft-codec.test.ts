/** ConfChange wire format: round trips, and garbage is refused with InvalidArgumentError. */
import { describe, expect, it } from "vitest";
import { type ConfChange, ConfChangeTransition, ConfChangeType, decodeConfChange, encodeConfChange } from "../../src/raft/index.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { createPrng } from "../../src/util/prng.js";

const samples: ConfChange[] = [
  { transition: ConfChangeTransition.Auto, changes: [] },
  { transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.AddNode, nodeId: 1 }] },
  {
    transition: ConfChangeTransition.JointExplicit,
    changes: [
      { type: ConfChangeType.AddLearnerNode, nodeId: 127 },
      { type: ConfChangeType.AddNode, nodeId: 128 },
      { type: ConfChangeType.RemoveNode, nodeId: Number.MAX_SAFE_INTEGER },
    ],
    context: new Uint8Array([1, 2, 3]),
  },
  {
    transition: ConfChangeTransition.JointImplicit,
    changes: [{ type: ConfChangeType.RemoveNode, nodeId: 300 }],
    context: new Uint8Array(),
  },
];

describe("ConfChange codec", () => {
  it("round-trips", () => {
    for (const cc of samples) expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
  });

  it("is compact", () => {
    expect(encodeConfChange(samples[1]!)).toHaveLength(6); // version, transition, flags, count, type, id
  });

  const garbage: [string, number[]][] = [
    ["empty", []],
    ["unknown version", [2, 0, 0, 0]],
    ["bad transition", [1, 3, 0, 0]],
    ["bad flags", [1, 0, 2, 0]],
    ["truncated change", [1, 0, 0, 1, 0]],
    ["bad change type", [1, 0, 0, 1, 3, 1]],
    ["node id 0", [1, 0, 0, 1, 0, 0]],
    ["non-canonical varint", [1, 0, 0, 1, 0, 0x81, 0x00]],
    ["varint too long", [1, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ["node id beyond 2^53", [1, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
    ["context length beyond data", [1, 0, 1, 0, 5, 1]],
    ["trailing bytes", [1, 0, 0, 0, 9]],
    ["too many changes", [1, 0, 0, 0x81, 0x08]],
  ];
  for (const [name, bytes] of garbage) {
    it(`refuses ${name}`, () => {
      expect(() => decodeConfChange(new Uint8Array(bytes))).toThrow(InvalidArgumentError);
    });
  }

  it("never throws anything but InvalidArgumentError on random or mutated input", () => {
    const prng = createPrng(7);
    const valid = samples.map(encodeConfChange);
    for (let i = 0; i < 2000; i++) {
      let data: Uint8Array;
      if (i % 2 === 0) {
        data = new Uint8Array(prng.nextInt(24));
        for (let j = 0; j < data.length; j++) data[j] = prng.nextInt(256);
      } else {
        data = valid[prng.nextInt(valid.length)]!.slice();
        data[prng.nextInt(data.length)] = prng.nextInt(256);
      }
      try {
        const cc = decodeConfChange(data);
        expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc); // whatever decodes, re-encodes
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidArgumentError);
      }
    }
  });
});
