/**
 * The error contract is written in three places: the table in docs/errors.md (the README links to
 * it), the comment on ErrorInfo in proto/tally.proto, and the chaos harness's contract workers
 * (which act on it). They must say the same thing, and cover every code the server can send, once.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/api/status-codes.js";
import { CONTRACT_NOT_APPLIED } from "../chaos/run.js";

const root = new URL("../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
// Parenthesised words are gRPC statuses ("`NOT_LEADER` (UNAVAILABLE)"), not tally codes.
const codesIn = (text: string) =>
  [...text.replace(/\([^)]*\)/g, "").matchAll(/\b([A-Z][A-Z_]{3,})\b/g)]
    .map((m) => m[1]!)
    .filter((code) => (ERROR_CODES as readonly string[]).includes(code));

/** The codes in cell `cell` of the markdown table row whose first cell matches `row`. */
function tableRow(markdown: string, row: RegExp, cell = 1): string[] {
  const line = markdown.split("\n").find((l) => l.startsWith("|") && row.test(l.split("|")[1] ?? ""));
  expect(line, `a table row matching ${row}`).toBeDefined();
  return codesIn(line!.split("|")[cell]!);
}

describe("the error contract", () => {
  const docs = read("docs/errors.md");
  const proto = read("proto/tally.proto");
  const protoClass = (label: string) => {
    const block = proto.slice(proto.indexOf(`//   ${label}:`));
    const end = block.slice(1).search(/\n\/\/   [a-z ]+:|\nmessage /);
    return codesIn(block.slice(0, end + 1));
  };

  it("docs/errors.md: every code exactly once across not applied and unknown; OK applies", () => {
    expect(tableRow(docs, /\*\*applied\*\*/, 2)).toEqual([]);
    expect(
      docs.split("\n").find((l) => /^\| \*\*applied\*\* \| OK \|/.test(l)),
      "the applied row names OK",
    ).toBeDefined();
    const notApplied = tableRow(docs, /\*\*not applied\*\*/, 2);
    const unknown = tableRow(docs, /\*\*unknown\*\*/, 2);
    expect([...notApplied, ...unknown].sort()).toEqual([...ERROR_CODES].sort());
    expect(new Set(notApplied)).toEqual(new Set(CONTRACT_NOT_APPLIED));
  });

  it("the proto comment says the same as docs/errors.md", () => {
    const notApplied = new Set(tableRow(docs, /\*\*not applied\*\*/, 2));
    const unknown = new Set(tableRow(docs, /\*\*unknown\*\*/, 2));
    expect(new Set(protoClass("not applied"))).toEqual(notApplied);
    expect(new Set(protoClass("unknown"))).toEqual(unknown);
  });

  it("the README states no table of its own, and links to docs/errors.md", () => {
    const readme = read("README.md");
    expect(readme).toContain("(docs/errors.md)");
    // A second copy of the table would drift: codes may be named, but not classified in a table row.
    const tableRows = readme.split("\n").filter((l) => l.startsWith("|") && codesIn(l).length > 1);
    expect(tableRows).toEqual([]);
  });
});
