import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  decodeEntry,
  encodeEntry,
  sessionClientId,
  sessionEntryIndex,
  validateCommand,
  validateEntry,
  type Command,
  type CounterOp,
  type EntryPayload,
} from "../../src/shard/commands.js";
import { InvalidArgumentError } from "../../src/util/errors.js";
import { createPrng } from "../../src/util/prng.js";
import { add, cas, INT64_MAX, INT64_MIN, key, reset, set } from "./shard-harness.js";

const edges = [
  0n,
  1n,
  -1n,
  127n,
  128n,
  -32n,
  -33n,
  255n,
  256n,
  65_535n,
  65_536n,
  2n ** 31n,
  2n ** 32n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  -(2n ** 53n) - 1n,
  INT64_MAX,
  INT64_MAX - 1n,
  INT64_MIN,
  INT64_MIN + 1n,
  -INT64_MAX,
];

const raw = new Packr({ useRecords: false, int64AsType: "bigint", moreTypes: false });

function mutate(ops: CounterOp[], seq = 1): Command {
  return { type: "mutate", clientId: 1000, seq, firstUnackedSeq: seq, ops };
}

describe("entry encoding", () => {
  it("round-trips every command and op kind exactly", () => {
    const payload: EntryPayload = {
      timestampMs: 1_700_000_000_123,
      commands: [
        { type: "register" },
        { type: "keepalive", clientId: 42_000 },
        mutate([add("a", 5n), add("b", -7n, 0n), set("c", 9n), reset("d"), cas("e", 0, 3n), cas("f", 2 ** 40, -3n)], 7),
      ],
    };
    expect(decodeEntry(encodeEntry(payload))).toEqual(payload);
  });

  it("keeps int64 edges exact in delta, value and floor (never through a rounding number)", () => {
    for (const edge of edges) {
      const payload: EntryPayload = { timestampMs: 1, commands: [mutate([add("k", edge, edge), set("k", edge), cas("k", 1, edge)])] };
      const decoded = decodeEntry(encodeEntry(payload));
      expect(decoded).toEqual(payload);
      const ops = (decoded.commands[0] as Extract<Command, { type: "mutate" }>).ops;
      for (const op of ops) {
        if (op.kind === "add") {
          expect(typeof op.delta).toBe("bigint");
          expect(op.delta).toBe(edge);
          expect(op.floor).toBe(edge);
        } else if (op.kind === "set" || op.kind === "cas") {
          expect(op.value).toBe(edge);
        }
      }
    }
  });

  it("keeps binary keys byte-exact, including 0x00 and 0xff and the 256-byte maximum", () => {
    const keys = [new Uint8Array([0]), new Uint8Array([0xff, 0x00, 0x80, 0x7f]), new Uint8Array(256).map((_, i) => i), key("ünïcødé")];
    for (const k of keys) {
      const decoded = decodeEntry(encodeEntry({ timestampMs: 1, commands: [mutate([add(k, 1n)])] }));
      const op = (decoded.commands[0] as Extract<Command, { type: "mutate" }>).ops[0]!;
      expect(Array.from(op.key)).toEqual(Array.from(k));
    }
  });

  it("is deterministic: the same payload always encodes to the same bytes", () => {
    const payload: EntryPayload = { timestampMs: 99, commands: [mutate([add("x", INT64_MAX), set("y", 1n)])] };
    const first = encodeEntry(payload);
    encodeEntry({ timestampMs: 5, commands: [{ type: "register" }] });
    expect(encodeEntry(payload)).toEqual(first);
    expect(first).not.toBe(encodeEntry(payload)); // a fresh array every time
  });

  it("is compact: a single small add costs a few bytes beyond its key", () => {
    const bytes = encodeEntry({ timestampMs: 1_700_000_000_000, commands: [mutate([add("user:1", 1n)])] });
    expect(bytes.length).toBeLessThan(35);
  });

  it("encodeEntry refuses invalid commands instead of logging them", () => {
    expect(() => encodeEntry({ timestampMs: 1, commands: [mutate([add("", 1n)])] })).toThrow(InvalidArgumentError);
    expect(() => encodeEntry({ timestampMs: -1, commands: [] })).toThrow(/timestampMs/);
  });
});

describe("validateCommand", () => {
  const cases: Array<[string, Command, RegExp]> = [
    ["empty key", mutate([add("", 1n)]), /ops\[0\] \(add\) key is empty/],
    ["257-byte key", mutate([set("x", 1n), add(new Uint8Array(257), 1n)]), /ops\[1\] \(add\) key is 257 bytes; max 256/],
    ["delta above int64", mutate([add("k", INT64_MAX + 1n)]), /ops\[0\] \(add\) delta 9223372036854775808 is outside the int64 range/],
    ["floor below int64", mutate([add("k", 1n, INT64_MIN - 1n)]), /floor .* outside the int64 range/],
    ["set value below int64", mutate([set("k", INT64_MIN - 1n)]), /\(set\) value/],
    ["negative expectedVersion", mutate([cas("k", -1, 1n)]), /expectedVersion must be >= 0/],
    ["fractional expectedVersion", mutate([cas("k", 1.5, 1n)]), /expectedVersion must be a safe integer/],
    ["number delta", mutate([{ kind: "add", key: key("k"), delta: 5 as unknown as bigint }]), /delta must be a bigint/],
    ["no ops", mutate([]), /no ops/],
    ["10001 ops", mutate(Array.from({ length: 10_001 }, () => add("k", 1n))), /10001 ops; max 10000/],
    ["seq 0", { type: "mutate", clientId: 1, seq: 0, firstUnackedSeq: 0, ops: [add("k", 1n)] }, /seq must be >= 1/],
    [
      "firstUnacked above seq",
      { type: "mutate", clientId: 1, seq: 3, firstUnackedSeq: 4, ops: [add("k", 1n)] },
      /firstUnackedSeq 4 is above seq 3/,
    ],
    ["client 0", { type: "keepalive", clientId: 0 }, /clientId must be >= 1/],
    ["unsafe client id", { type: "keepalive", clientId: 2 ** 53 }, /clientId must be a safe integer/],
    ["unknown type", { type: "explode" } as unknown as Command, /unknown command type "explode"/],
    ["unknown op kind", mutate([{ kind: "mul", key: key("k") } as unknown as CounterOp]), /ops\[0\] has unknown kind "mul"/],
  ];
  for (const [name, command, message] of cases) {
    it(`rejects ${name} with a message naming the problem`, () => {
      expect(() => validateCommand(command)).toThrow(InvalidArgumentError);
      expect(() => validateCommand(command)).toThrow(message);
    });
  }

  it("accepts the edges of every bound", () => {
    expect(() => validateCommand(mutate([add(new Uint8Array(256), INT64_MIN, INT64_MAX), cas("k", 0, INT64_MAX)]))).not.toThrow();
    expect(() => validateCommand(mutate(Array.from({ length: 10_000 }, () => add("k", 1n))))).not.toThrow();
    expect(() => validateCommand({ type: "mutate", clientId: 1, seq: 5, firstUnackedSeq: 0, ops: [reset("k")] })).not.toThrow();
  });

  it("applies stricter limits when a server passes them", () => {
    expect(() => validateCommand(mutate([add("abcd", 1n)]), { maxKeyBytes: 3, maxOps: 10 })).toThrow(/4 bytes; max 3/);
    expect(() => validateCommand(mutate([add("a", 1n), add("b", 1n)]), { maxKeyBytes: 3, maxOps: 1 })).toThrow(/2 ops; max 1/);
  });

  it("validateEntry names the command", () => {
    expect(() => validateEntry({ timestampMs: 1, commands: [{ type: "register" }, mutate([add("", 1n)])] })).toThrow(
      /^commands\[1\]: ops\[0\]/,
    );
  });
});

describe("decodeEntry rejects garbage", () => {
  const wrongShapes: Array<[string, unknown]> = [
    ["a map", { timestampMs: 1, commands: [] }],
    ["a 1-element array", [1]],
    ["a 3-element array", [1, [], 0]],
    ["a string timestamp", ["1", []]],
    ["a fractional timestamp", [1.5, []]],
    ["a negative timestamp", [-5, []]],
    ["commands not an array", [1, 7]],
    ["an unknown command tag", [1, [[9]]]],
    ["register with extra fields", [1, [[0, 1]]]],
    ["keepalive without client", [1, [[1]]]],
    ["mutate with ops not an array", [1, [[2, 1000, 1, 1, "ops"]]]],
    ["an unknown op tag", [1, [[2, 1000, 1, 1, [[7, new Uint8Array([1]), 1]]]]]],
    ["a string key", [1, [[2, 1000, 1, 1, [[0, "k", 1]]]]]],
    ["a float delta", [1, [[2, 1000, 1, 1, [[0, new Uint8Array([1]), 1.5]]]]]],
    ["an unsafe-integer delta as float", [1, [[2, 1000, 1, 1, [[0, new Uint8Array([1]), 2 ** 60]]]]]],
    ["a uint64 delta above int64", [1, [[2, 1000, 1, 1, [[0, new Uint8Array([1]), 2n ** 64n - 1n]]]]]],
    ["add with 5 fields", [1, [[2, 1000, 1, 1, [[0, new Uint8Array([1]), 1, 0, 0]]]]]],
    ["an empty key", [1, [[2, 1000, 1, 1, [[0, new Uint8Array(0), 1]]]]]],
    ["a seq of 2^64-1", [1, [[2, 1000, 2n ** 64n - 1n, 1, [[0, new Uint8Array([1]), 1]]]]]],
  ];
  for (const [name, value] of wrongShapes) {
    it(`rejects ${name}`, () => {
      expect(() => decodeEntry(raw.pack(value))).toThrow(InvalidArgumentError);
    });
  }

  it("rejects empty data, truncation and trailing bytes", () => {
    const good = encodeEntry({ timestampMs: 1, commands: [mutate([add("k", 1n)])] });
    expect(() => decodeEntry(new Uint8Array(0))).toThrow(InvalidArgumentError);
    for (let length = 1; length < good.length; length++) {
      expect(() => decodeEntry(good.subarray(0, length))).toThrow(InvalidArgumentError);
    }
    const trailing = new Uint8Array(good.length + 1);
    trailing.set(good);
    expect(() => decodeEntry(trailing)).toThrow(InvalidArgumentError);
  });

  it("never throws anything but InvalidArgumentError on random bytes or bit flips (seeded)", () => {
    const prng = createPrng(20_240_601);
    const good = encodeEntry({
      timestampMs: 1_700_000_000_000,
      commands: [{ type: "register" }, mutate([add("key-1", 99n, -5n), cas("k2", 17, INT64_MIN)], 3)],
    });
    let rejected = 0;
    for (let trial = 0; trial < 3000; trial++) {
      let data: Uint8Array;
      if (trial % 2 === 0) {
        data = new Uint8Array(1 + prng.nextInt(40)).map(() => prng.nextInt(256));
      } else {
        data = good.slice();
        for (let flips = 1 + prng.nextInt(3); flips > 0; flips--) data[prng.nextInt(data.length)]! ^= 1 << prng.nextInt(8);
      }
      let payload: EntryPayload | undefined;
      try {
        payload = decodeEntry(data);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        rejected++;
        continue;
      }
      // A mutation that still decodes must be a fully valid entry that re-encodes to itself.
      expect(() => validateEntry(payload!)).not.toThrow();
      expect(decodeEntry(encodeEntry(payload!))).toEqual(payload);
    }
    expect(rejected).toBeGreaterThan(2000);
  });
});

describe("session ids", () => {
  it("are unique per register within and across entries, and name their entry", () => {
    expect(sessionClientId(1, 0)).toBe(1000);
    expect(sessionClientId(1234, 2)).toBe(1_234_002);
    expect(sessionEntryIndex(1_234_002)).toBe(1234);
    expect(sessionClientId(2, 0)).toBeGreaterThan(sessionClientId(1, 999));
    expect(() => sessionClientId(1, 1000)).toThrow();
    expect(() => sessionClientId(2 ** 52, 0)).toThrow(/safe integer/);
  });
});
