/**
 * Writes src/api/generated/ : the TypeScript types of proto/tally.proto's messages and services,
 * made by proto-loader-gen-types (it ships with @grpc/proto-loader) with the options the code loads
 * the proto with (PROTO_LOADER_OPTIONS, src/api/proto.ts), so the types describe the objects the
 * handlers and clients really get: `Foo__Output` is a decoded message (64-bit integers as decimal
 * strings, enums as names, every scalar and repeated field present, the oneof's virtual field), `Foo`
 * what the encoder accepts. src/api/proto.ts re-exports them under the names the code uses.
 *
 *   npm run gen:proto                      rewrite src/api/generated/
 *   npx tsx scripts/gen-proto.ts --check   exit 1 if it is out of date
 *
 * test/unit/proto-types.test.ts fails when the checked-in folder differs from a fresh generation.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { PROTO_LOADER_OPTIONS, TALLY_PROTO_PATH } from "../src/api/proto.js";

export const ROOT = resolve(import.meta.dirname, "..");
export const GENERATED_DIR = join(ROOT, "src", "api", "generated");
/** The protos whose types are generated (relative to proto/). peer.proto is the transport's own. */
const PROTOS = ["tally.proto"];

/** proto-loader-gen-types' flags for PROTO_LOADER_OPTIONS (the load options of src/api/proto.ts). */
export function generatorFlags(): string[] {
  const options = PROTO_LOADER_OPTIONS;
  const flags: string[] = [];
  if (options.keepCase === true) flags.push("--keepCase");
  if (options.longs === String) flags.push("--longs=String");
  else if (options.longs === Number) flags.push("--longs=Number");
  if (options.enums === String) flags.push("--enums=String");
  if (options.defaults === true) flags.push("--defaults");
  if (options.arrays === true) flags.push("--arrays");
  if (options.objects === true) flags.push("--objects");
  if (options.oneofs === true) flags.push("--oneofs");
  return [...flags, "--grpcLib=@grpc/grpc-js", "--includeComments", "--importFileExtension=.js"];
}

/** Generates the types into `outDir` (which it empties first), plus the index messages.ts. */
export function generateProtoTypes(outDir: string): void {
  rmSync(outDir, { recursive: true, force: true });
  const bin = join(ROOT, "node_modules", ".bin", "proto-loader-gen-types");
  // Run from the repository root with relative paths: each file names its source ("proto/tally.proto").
  execFileSync(bin, [...generatorFlags(), "-I", "proto", "-O", outDir, ...PROTOS], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  writeFileSync(join(outDir, "messages.ts"), messagesIndex(join(outDir, PACKAGE_DIR)));
  writeFileSync(join(outDir, "reflection.ts"), reflectionIndex());
}

/** proto-loader's synthesized file name -> the name of the file it came from. */
const REFLECTED_FILE_NAMES: Readonly<Record<string, string>> = {
  "tally_v1.proto": "tally.proto",
  "grpc_health_v1.proto": "grpc/health/v1/health.proto",
};

/**
 * reflection.ts: what tallyd's server reflection serves (src/server/rpc/reflection.ts), worked out
 * here once instead of at every start (parsing the protos and indexing them took ~150 ms of each
 * start): proto/tally.proto as written (keepCase, so reflection shows its snake_case fields) and
 * grpc-health-check's health.proto, each a serialized FileDescriptorProto named as its file, the
 * files each depends on, every fully qualified symbol with the file that defines it, and the
 * services. The index is @grpc/reflection's own, over the same package definition, so the answers
 * are the ones that library gave (test/unit/reflection.test.ts compares them).
 */
function reflectionIndex(): string {
  const index = (reflectionOracle() as unknown as { v1: unknown }).v1 as {
    files: Record<string, object>;
    fileDependencies: Map<object, object[]>;
    fileEncodings: Map<object, Uint8Array>;
    symbols: Record<string, object>;
    services: Record<string, object>;
    extensions: Record<string, object>;
  };
  if (Object.keys(index.extensions).length > 0)
    throw new Error("reflection: the protos declare extensions, which reflection.ts does not serve");
  const nameOf = new Map(Object.entries(index.files).map(([name, file]) => [file, name]));
  const files = Object.entries(index.files).map(([name, file]) => ({
    name,
    descriptor: Buffer.from(index.fileEncodings.get(file)!).toString("base64"),
    dependencies: (index.fileDependencies.get(file) ?? []).map((dependency) => nameOf.get(dependency)!),
  }));
  // Symbols by file, several to a line: one line per symbol made the file 650 lines long.
  const symbolsOf = new Map<string, string[]>();
  for (const [symbol, file] of Object.entries(index.symbols)) {
    const name = nameOf.get(file)!;
    const list = symbolsOf.get(name) ?? [];
    symbolsOf.set(name, list);
    list.push(symbol);
  }
  const wrapped = (names: string[]): string[] => {
    const lines: string[] = [];
    for (const name of names.map((symbol) => JSON.stringify(symbol))) {
      if (lines.length > 0 && lines.at(-1)!.length + name.length + 2 <= 120) lines[lines.length - 1] += ` ${name},`;
      else lines.push(`    ${name},`);
    }
    return lines;
  };
  const lines = [
    "// Generated by scripts/gen-proto.ts (npm run gen:proto): what server reflection serves, indexed at",
    "// build time (src/server/rpc/reflection.ts). Do not edit.",
    "",
    "/** The services reflection lists, in order. */",
    `export const REFLECTION_SERVICES: readonly string[] = ${JSON.stringify(Object.keys(index.services))};`,
    "",
    "/** Each file: its serialized FileDescriptorProto (base64) and the files it depends on. */",
    "export const REFLECTION_FILES: ReadonlyArray<{ name: string; descriptor: string; dependencies: readonly string[] }> = [",
    ...files.map((file) => `  ${JSON.stringify(file)},`),
    "];",
    "",
    "/** Per file, every fully qualified symbol it defines (message, field, enum, value, service, method, oneof). */",
    "export const REFLECTION_SYMBOLS: Readonly<Record<string, readonly string[]>> = {",
    ...[...symbolsOf].flatMap(([name, symbols]) => [`  ${JSON.stringify(name)}: [`, ...wrapped(symbols), "  ],"]),
    "};",
  ];
  return `${lines.join("\n")}\n`;
}

/** @grpc/reflection's service over the two protos, their files renamed (what reflection.ts serves). */
export function reflectionOracle(): ReflectionService {
  const definition = protoLoader.loadSync([TALLY_PROTO_PATH, healthProtoPath], { keepCase: true });
  for (const entry of Object.values(definition)) {
    const files = (entry as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    if (Array.isArray(files)) for (let i = 0; i < files.length; i++) files[i] = renamedFile(files[i]!);
  }
  return new ReflectionService(definition);
}

/**
 * A serialized FileDescriptorProto with its name (field 1, which protobufjs writes first) replaced
 * per REFLECTED_FILE_NAMES; unchanged if it is not laid out so or not listed (then the synthesized
 * name is served: still the right fields, only the file is named after its package).
 */
function renamedFile(bytes: Buffer): Buffer {
  if (bytes.length < 2 || bytes[0] !== 0x0a || bytes[1]! >= 0x80) return bytes;
  const length = bytes[1]!;
  if (2 + length > bytes.length) return bytes;
  const renamed = REFLECTED_FILE_NAMES[bytes.subarray(2, 2 + length).toString("utf8")];
  if (renamed === undefined) return bytes;
  const name = Buffer.from(renamed, "utf8");
  if (name.length >= 0x80) return bytes;
  return Buffer.concat([Buffer.from([0x0a, name.length]), name, bytes.subarray(2 + length)]);
}

/** The folder of the package's generated files (package tally.v1). */
const PACKAGE_DIR = join("tally", "v1");

/**
 * messages.ts: every message of the package under the names src/api/proto.ts exports, `FooMessage`
 * (Foo__Output, as decoded) and `FooInput` (Foo, as the encoder accepts it); each enum's decoded
 * form as `FooName`; each service's client and handler types.
 */
function messagesIndex(packageDir: string): string {
  const lines = [
    "// Generated by scripts/gen-proto.ts (npm run gen:proto): the names src/api/proto.ts exports for the",
    "// generated types of package tally.v1. Do not edit.",
    "",
  ];
  for (const file of readdirSync(packageDir).sort()) {
    const name = file.replace(/\.ts$/, "");
    const text = readFileSync(join(packageDir, file), "utf8");
    const from = `./${PACKAGE_DIR.split("\\").join("/")}/${name}.js`;
    if (text.includes(`export interface ${name}__Output`))
      lines.push(`export type { ${name}__Output as ${name}Message, ${name} as ${name}Input } from "${from}";`);
    else if (text.includes(`export type ${name}__Output`)) lines.push(`export type { ${name}__Output as ${name}Name } from "${from}";`);
    else if (text.includes(`export interface ${name}Client`)) lines.push(`export type { ${name}Client, ${name}Handlers } from "${from}";`);
    else throw new Error(`${file}: neither a message, an enum nor a service`);
  }
  return `${lines.join("\n")}\n`;
}

/** Every file under `dir`, by its path relative to `dir`, with its text. */
export function readTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(dir, path), readFileSync(path, "utf8"));
    }
  };
  walk(dir);
  return files;
}

/** The paths that differ between the checked-in folder and a fresh generation (empty: up to date). */
export function staleGeneratedFiles(): string[] {
  const scratch = mkdtempSync(join(tmpdir(), "tally-gen-proto-"));
  try {
    const fresh = join(scratch, "generated");
    generateProtoTypes(fresh);
    const want = readTree(fresh);
    const have = readTree(GENERATED_DIR);
    const paths = new Set([...want.keys(), ...have.keys()]);
    return [...paths].filter((path) => want.get(path) !== have.get(path)).sort();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  if (process.argv.includes("--check")) {
    const stale = staleGeneratedFiles();
    if (stale.length > 0) {
      process.stderr.write(`src/api/generated is out of date (${stale.join(", ")}): run npm run gen:proto\n`);
      process.exit(1);
    }
  } else {
    generateProtoTypes(GENERATED_DIR);
    process.stdout.write(`wrote ${relative(ROOT, GENERATED_DIR)}/\n`);
  }
}
