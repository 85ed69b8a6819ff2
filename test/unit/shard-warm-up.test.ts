/** The start-up warm-up of the apply path (src/shard/warm-up.ts) applies every entry it builds. */
import { describe, expect, it } from "vitest";
import { warmUpApplyPath } from "../../src/shard/warm-up.js";

describe("the apply-path warm-up", () => {
  it("applies its entries (packed adds, a sessionless write) and can run again", () => {
    expect(warmUpApplyPath()).toBe(40 * 513);
    expect(warmUpApplyPath()).toBe(40 * 513);
  });
});
