/**
 * tallyctl add, get, set, reset and cas: one counter each, printed as its value, version and fence
 * (--json: the client's result, 64-bit integers as decimal strings).
 */
import type { Command } from "commander";
import { InvalidArgumentError, VersionMismatchError } from "../util/errors.js";
import type { EventualAddResult, EventualReadResult } from "../client/eventual.js";
import { int64Argument, uint64Argument } from "./arguments.js";
import type { GlobalOptions, WithClient } from "./command-types.js";
import { formatMutation, formatRead, mutationJson, readJson } from "./format.js";
import { globalOutput } from "./region-commands.js";

type GetFlags = { stale?: boolean; minIndex?: bigint; eventual?: boolean; global?: boolean };

const deadline = (options: GlobalOptions): { deadlineMs: number } => ({ deadlineMs: options.timeout });

/** The operator's next step after a compare-and-set saw another version. */
function casMismatch(key: string, expected: bigint, error: VersionMismatchError): VersionMismatchError {
  const current = error.currentVersion;
  const message =
    current === 0
      ? `${key} does not exist (version 0), expected version ${expected}: \`tallyctl cas ${key} 0 VALUE\` creates it only if it is still absent (etcd's compare version = 0)`
      : `${key} is at version ${current}, expected ${expected}; nothing changed (the version is the log index of its last write: \`tallyctl get ${key}\` prints it${expected === 0n ? "; 0 means only if absent" : ""})`;
  return new VersionMismatchError(message, current);
}

export function addCounterCommands(program: Command, withClient: WithClient): void {
  program
    .command("add")
    .description("add DELTA (default 1) to KEY; prints the new value")
    .argument("<key>")
    .argument("[delta]", "signed 64-bit integer", int64Argument("DELTA"), 1n)
    .option("--eventual", "buffer the add on a node (docs/eventual.md): fast, flushed into the shard within ~100 ms")
    .option("--exact", "a replicated commit even under a cluster.yaml eventual prefix")
    .action(async (key: string, delta: bigint, commandOptions: { eventual?: boolean; exact?: boolean }, command: Command) =>
      withClient(command, async (tally, options) => {
        if (commandOptions.eventual && commandOptions.exact) throw new InvalidArgumentError("give --eventual or --exact, not both");
        await tally.connect();
        const mode = commandOptions.eventual ? "eventual" : commandOptions.exact ? "exact" : "auto";
        const result = await tally.add(key, delta, { ...deadline(options), mode });
        if ("accepted" in result) return eventualAddText(key, delta, result, options.json === true);
        return options.json ? mutationJson(key, result) : formatMutation(key, result);
      }),
    );

  program
    .command("get")
    .description("read KEY (linearizable unless --stale)")
    .argument("<key>")
    .option("--stale", "any replica may answer, possibly behind")
    .option("--min-index <n>", "the replica must have applied at least this log index", uint64Argument("--min-index"))
    .option("--eventual", "also this node's unflushed eventual delta of KEY and its staleness (docs/eventual.md)")
    .option("--global", "the sum over regions: this region's value plus every replicated region's component (docs/regions.md)")
    .action(async (key: string, commandOptions: GetFlags, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        if (commandOptions.global) return globalOutput(tally, key, options.json === true);
        if (commandOptions.eventual) {
          if (tally.getEventual === undefined) throw new InvalidArgumentError("this client has no eventual reads");
          const consistency = commandOptions.stale ? "stale" : "linearizable";
          const result = await tally.getEventual(key, { ...deadline(options), consistency, includePending: true });
          return eventualReadText(key, result, options.json === true);
        }
        const result = await tally.get(key, {
          ...deadline(options),
          consistency: commandOptions.stale ? "stale" : "linearizable",
          ...(commandOptions.minIndex !== undefined ? { minIndex: commandOptions.minIndex } : {}),
        });
        return options.json ? readJson(key, result) : formatRead(key, result);
      }),
    );

  program
    .command("set")
    .description("set KEY to VALUE")
    .argument("<key>")
    .argument("<value>", "signed 64-bit integer", int64Argument("VALUE"))
    .action(async (key: string, value: bigint, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.set(key, value, deadline(options));
        return options.json ? mutationJson(key, result) : formatMutation(key, result);
      }),
    );

  program
    .command("reset")
    .description("delete KEY")
    .argument("<key>")
    .action(async (key: string, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.reset(key, deadline(options));
        return options.json
          ? mutationJson(key, result)
          : `${key} reset  (version ${result.version}, fence ${result.fence.term}/${result.fence.index})`;
      }),
    );

  program
    .command("cas")
    .description("set KEY to VALUE if its version is EXPECTED_VERSION (0: only if KEY does not exist, like etcd's version = 0)")
    .argument("<key>")
    .argument("<expected-version>", "unsigned 64-bit integer", uint64Argument("EXPECTED_VERSION"))
    .argument("<value>", "signed 64-bit integer", int64Argument("VALUE"))
    .action(async (key: string, expectedVersion: bigint, value: bigint, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        await tally.connect();
        const result = await tally.compareAndSet(key, expectedVersion, value, deadline(options)).catch((error: unknown) => {
          throw error instanceof VersionMismatchError ? casMismatch(key, expectedVersion, error) : error;
        });
        return options.json ? mutationJson(key, result) : formatMutation(key, result);
      }),
    );
}

function eventualAddText(key: string, delta: bigint, result: EventualAddResult, json: boolean): string {
  if (json) return JSON.stringify({ key, delta: delta.toString(), mode: "eventual", accepted: result.accepted, nodeId: result.nodeId });
  return `${key} += ${delta} buffered on node ${result.nodeId} (eventual: in the shard within the flush interval)`;
}

function eventualReadText(key: string, result: EventualReadResult, json: boolean): string {
  if (json)
    return JSON.stringify({
      key,
      value: result.value.toString(),
      committed: result.committed.toString(),
      pendingDelta: result.pendingDelta.toString(),
      stalenessMs: result.stalenessMs,
      version: result.version.toString(),
      appliedIndex: result.appliedIndex.toString(),
      nodeId: result.nodeId,
    });
  return `${key} = ${result.value}  (committed ${result.committed}, pending on node ${result.nodeId} ${result.pendingDelta}, staleness ${result.stalenessMs} ms, version ${result.version})`;
}
