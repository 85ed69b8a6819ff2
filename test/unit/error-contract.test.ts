/**
 * The error contract is written in four places: README.md's table, docs/errors.md, the comment on
 * ErrorInfo in proto/tally.proto, and the chaos harness's contract workers (which act on it). They
 * must say the same thing, and cover every code the server can send, once.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/api/status-codes.js";
import { CONTRACT_NOT_APPLIED } from "../chaos/run.js";

const root = new URL("../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
// Parenthesised words are gRPC statuses ("`NOT_LEADER` (UNAVAILABLE)"), not tally codes.
const codesIn = (text: string) => [...text.replace(/\([^)]*\)/g, "").matchAll(/\b([A-Z][A-Z_]{3,})\b/g)].map((m) => m[1]!).filter((code) => (ERROR_CODES as readonly string[]).includes(code));

/** The codes in cell `cell` of the markdown table row whose first cell matches `row`. */
function tableRow(markdown: string, row: RegExp, cell = 1): string[] {
  const line = markdown.split("\n").find((l) => l.startsWith("|") && row.test(l.split("|")[1] ?? ""));
  expect(line, `a table row matching ${row}`).toBeDefined();
  return codesIn(line!.split("|")[cell]!);
}

describe("the error contract", () => {
  const readme = read("README.md");
  const docs = read("docs/errors.md");
  const proto = read("proto/tally.proto");
  const protoClass = (label: string) => {
    const block = proto.slice(proto.indexOf(`//   ${label}:`));
    const end = block.slice(1).search(/\n\/\/   [a-z ]+:|\nmessage /);
    return codesIn(block.slice(0, end + 1));
  };

  it("README: every code exactly once across not applied and unknown; OK applies", () => {
    const notApplied = tableRow(readme, /NOT_LEADER/);
    const unknown = tableRow(readme, /AMBIGUOUS/);
    expect([...notApplied, ...unknown].sort()).toEqual([...ERROR_CODES].sort());
    expect(new Set(notApplied)).toEqual(new Set(CONTRACT_NOT_APPLIED));
  });

  it("docs/errors.md and the proto comment say the same as the README", () => {
    const notApplied = new Set(tableRow(readme, /NOT_LEADER/));
    const unknown = new Set(tableRow(readme, /AMBIGUOUS/));
    expect(new Set(tableRow(docs, /\*\*not applied\*\*/, 2))).toEqual(notApplied);
    expect(new Set(tableRow(docs, /\*\*unknown\*\*/, 2))).toEqual(unknown);
    expect(new Set(protoClass("not applied"))).toEqual(notApplied);
    expect(new Set(protoClass("unknown"))).toEqual(unknown);
  });
});
