/**
 * tally as users install it (docs/packaging.md): `npm pack` (which runs `prepare`, the build), then
 * `npm install <tarball>` into fresh apps outside the repository, and each counts through a real
 * 3-node cluster: a plain ESM app run by `node app.mjs`, and a strict TypeScript app
 * (exactOptionalPropertyTypes, skipLibCheck false) compiled against the shipped .d.ts. The installs
 * run read-only (chmod a-w) and, since root ignores permission bits, must leave every file as it
 * was: nothing in the package builds or writes at run time. A third install adds the server's
 * optional peer dependencies and runs the installed tallyctl against the cluster.
 *
 * Needs the npm registry (or a warm npm cache: the packages are the repo's own dependencies).
 * Every npm, tsc and app process has a deadline and runs in its own process group, killed whole.
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "../support/cluster.js";

const root = resolve(import.meta.dirname, "..", "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
const PACK_TIMEOUT_MS = 240_000;
const INSTALL_TIMEOUT_MS = 240_000;
const RUN_TIMEOUT_MS = 60_000;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment minus what `npm test` exported about this repository (npm_config_*, npm_package_*). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")));
}

/** Runs a command to completion in its own process group; SIGKILL to the group at the deadline. */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL"); // the group this call started: npm and its scripts
      } catch {
        // already gone
      }
      reject(
        new Error(
          `${command} ${args.join(" ")} took over ${timeoutMs} ms in ${cwd}\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`,
        ),
      );
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

async function runOk(command: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  const result = await run(command, args, cwd, timeoutMs);
  if (result.code !== 0)
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.code} in ${cwd}\nstdout: ${result.stdout.slice(-3000)}\nstderr: ${result.stderr.slice(-3000)}`,
    );
  return result;
}

function makeApp(dir: string, files: Record<string, string>): void {
  mkdirSync(dir);
  writeFileSync(
    join(dir, "package.json"),
    `${JSON.stringify({ name: relative(join(dir, ".."), dir), private: true, type: "module" }, null, 2)}\n`,
  );
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

async function install(dir: string, specs: string[]): Promise<void> {
  await runOk("npm", ["install", "--no-audit", "--no-fund", "--no-update-notifier", ...specs], dir, INSTALL_TIMEOUT_MS);
}

/** Every file under dir with its size and mtime: equal before and after means nothing was written. */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (path: string): void => {
    const stat = statSync(path);
    files.set(relative(dir, path), `${stat.isDirectory() ? "dir" : stat.size}@${stat.mtimeMs}`);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
  };
  walk(dir);
  return files;
}

function setWritable(dir: string, writable: boolean): void {
  const walk = (path: string): void => {
    const stat = statSync(path);
    chmodSync(path, writable ? stat.mode | 0o200 : stat.mode & ~0o222);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
  };
  walk(dir);
}

/** Runs `node args` in a read-only dir and asserts that no file under it changed. */
async function runReadOnly(dir: string, args: string[]): Promise<RunResult> {
  setWritable(dir, false);
  const before = snapshot(dir);
  const result = await run(process.execPath, args, dir, RUN_TIMEOUT_MS);
  expect(snapshot(dir)).toEqual(before);
  return result;
}

/** The installed packages of an app: its lockfile's entries that exist on disk. */
function installedPackages(dir: string): string[] {
  const lock = JSON.parse(readFileSync(join(dir, "package-lock.json"), "utf8")) as { packages: Record<string, unknown> };
  return Object.keys(lock.packages).filter((path) => path !== "" && statSync(join(dir, path), { throwIfNoEntry: false }) !== undefined);
}

function directoryBytes(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, entry) => sum + directoryBytes(join(path, entry)), 0);
}

const PLAIN_APP = `import { TallyClient } from "tally";

const client = new TallyClient({ endpoints: process.argv.slice(2), deadlineMs: 20000 });
try {
  await client.add("package:plain", 2n);
  const added = await client.add("package:plain", 3n);
  const read = await client.get("package:plain");
  console.log(\`plain-app added=\${added.value} read=\${read.value}\`);
} finally {
  await client.close();
}
`;

// Optional properties left out, given, and typed: what exactOptionalPropertyTypes checks.
const TYPESCRIPT_APP = `import { TallyClient, TallyError, type AddOptions, type TallyClientOptions } from "tally";

const options: TallyClientOptions = { endpoints: process.argv.slice(2), deadlineMs: 20_000 };
const client = new TallyClient(options);
try {
  const addOptions: AddOptions = { deadlineMs: 10_000 };
  const added = await client.add("package:typescript", 7n, addOptions);
  const read = await client.get("package:typescript", { consistency: "linearizable" });
  const value: bigint = read.value;
  console.log(\`typescript-app added=\${added.value} read=\${value}\`);
} catch (error) {
  if (error instanceof TallyError) console.error(\`tally error \${error.code}\`);
  throw error;
} finally {
  await client.close();
}
`;

const STRICT_TSCONFIG = {
  compilerOptions: {
    strict: true,
    exactOptionalPropertyTypes: true,
    skipLibCheck: false,
    module: "nodenext",
    moduleResolution: "nodenext",
    target: "es2022",
    types: ["node"],
    outDir: "out",
  },
  files: ["app.ts"],
};

describe("the tally package, installed from npm pack", () => {
  let work: string;
  let tarball: string;
  let cluster: TestCluster | undefined;
  let plainDir: string;
  let typescriptDir: string;
  let serverDir: string;

  beforeAll(
    async () => {
      work = mkdtempSync(join(tmpdir(), "tally-package-"));
      const startingCluster = TestCluster.start({ nodes: 3, shards: 2 });
      startingCluster.catch(() => undefined); // awaited below; a pack failure must not leave it unhandled
      try {
        await runOk("npm", ["pack", "--pack-destination", work, "--no-update-notifier"], root, PACK_TIMEOUT_MS);
        const tarballs = readdirSync(work).filter((name) => name.endsWith(".tgz"));
        expect(tarballs).toHaveLength(1);
        tarball = join(work, tarballs[0]!);
        plainDir = join(work, "plain-app");
        typescriptDir = join(work, "typescript-app");
        serverDir = join(work, "server-app");
        makeApp(plainDir, { "app.mjs": PLAIN_APP });
        makeApp(typescriptDir, { "app.ts": TYPESCRIPT_APP, "tsconfig.json": `${JSON.stringify(STRICT_TSCONFIG, null, 2)}\n` });
        makeApp(serverDir, {});
        const peers = Object.entries(manifest.peerDependencies).map(([name, range]) => `${name}@${range}`);
        await Promise.all([
          install(plainDir, [tarball]),
          install(typescriptDir, [tarball, "@types/node@^20"]),
          install(serverDir, [tarball, ...peers]),
        ]);
      } finally {
        cluster = await startingCluster;
      }
    },
    PACK_TIMEOUT_MS + INSTALL_TIMEOUT_MS + 60_000,
  );

  afterAll(async () => {
    await cluster?.destroy();
    if (work !== undefined) {
      setWritable(work, true);
      rmSync(work, { recursive: true, force: true });
    }
  });

  it("ships the built client, the prebuilt bins, proto/ and LICENSE, and no tests or sources", async () => {
    const { stdout } = await runOk("tar", ["-tzf", tarball], work, RUN_TIMEOUT_MS);
    const files = stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => line.replace(/^package\//, ""));
    for (const file of [
      "LICENSE",
      "package.json",
      "dist/lib/index.js",
      "dist/lib/index.d.ts",
      "dist/tallyd.mjs",
      "dist/tallyctl.mjs",
      "bin/tallyd.js",
      "bin/tallyctl.js",
      "proto/tally.proto",
    ]) {
      expect(files).toContain(file);
    }
    expect(files.filter((file) => /^(test|src|bench|scripts)\//.test(file) || (file.endsWith(".ts") && !file.endsWith(".d.ts")))).toEqual(
      [],
    );
    expect(files).not.toContain("bin/bundle.js"); // the build: needs esbuild, which installs do not have
    const license = readFileSync(join(plainDir, "node_modules", "tally", "LICENSE"), "utf8");
    expect(license).toContain("Apache License\n                           Version 2.0, January 2004");
    expect(license).toContain("END OF TERMS AND CONDITIONS");
  });

  it("installs only the client's dependencies, none of the server's or the build's", () => {
    const packages = installedPackages(plainDir);
    const names = new Set(packages.map((path) => path.replace(/^.*node_modules\//, "")));
    for (const name of Object.keys(manifest.dependencies)) expect(names).toContain(name);
    for (const name of [...Object.keys(manifest.peerDependencies), "classic-level", "esbuild", "tsx", "typescript", "vitest"]) {
      expect(names).not.toContain(name);
    }
    const megabytes = directoryBytes(join(plainDir, "node_modules")) / 1e6;
    process.stderr.write(`[client-package] client install: ${packages.length} packages, ${megabytes.toFixed(1)} MB\n`);
    expect(packages.length).toBeLessThan(70);
  });

  it("a plain Node ESM app (node app.mjs) counts through the cluster from a read-only install", async () => {
    const result = await runReadOnly(plainDir, ["app.mjs", ...cluster!.endpoints()]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("plain-app added=5 read=5");
    expect(result.code).toBe(0);
  });

  it("a strict TypeScript app compiles against the shipped .d.ts and counts from a read-only install", async () => {
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    const compiled = await run(process.execPath, [tsc, "-p", typescriptDir], typescriptDir, RUN_TIMEOUT_MS * 2);
    expect(compiled.stdout + compiled.stderr).toBe("");
    expect(compiled.code).toBe(0);
    const result = await runReadOnly(typescriptDir, [join("out", "app.js"), ...cluster!.endpoints()]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("typescript-app added=7 read=7");
    expect(result.code).toBe(0);
  });

  it("the installed tallyd without the server packages exits with one sentence naming what to install", async () => {
    const result = await runReadOnly(plainDir, [join("node_modules", "tally", "bin", "tallyd.js"), "--version"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tallyd: needs .*level.*install them next to it: npm install .*'level@\^/);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("with the optional peer dependencies installed, the installed tallyctl runs read-only against the cluster", async () => {
    const tallyctl = join("node_modules", "tally", "bin", "tallyctl.js");
    const endpoints = cluster!.endpoints().join(",");
    const added = await runReadOnly(serverDir, [tallyctl, "--endpoints", endpoints, "--json", "add", "package:tallyctl", "11"]);
    expect(added.stderr).toBe("");
    expect(JSON.parse(added.stdout)).toMatchObject({ value: "11" });
    const read = await runReadOnly(serverDir, [tallyctl, "--endpoints", endpoints, "--json", "get", "package:tallyctl"]);
    expect(read.stderr).toBe("");
    expect(JSON.parse(read.stdout)).toMatchObject({ value: "11" });
    expect(read.code).toBe(0);
  });
});
