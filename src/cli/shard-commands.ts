/**
 * tallyctl shard move|split and leader transfer: one shard's placement. Moves and splits are
 * operations the metadata leader runs (resumable, printed as their summary); a leader transfer is
 * asked of the shard's current leader.
 */
import type { Command } from "commander";
import { nodeIdArgument, shardIdArgument } from "./arguments.js";
import type { CliClient, GlobalOptions, WithClient } from "./command-types.js";
import { UsageError } from "./exit-codes.js";
import { changeOutput } from "./format.js";

/** `shard split --at SLOT`: the first slot of the new shard, 1..16383. */
function splitSlot(text: string): number {
  const value = Number(text);
  if (!(Number.isInteger(value) && value > 0 && value < 16384))
    throw new UsageError(`--at must be a slot in 1..16383, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * Asks the shard's leader (then, if that fails, each replica: one may have become leader) to hand
 * its leadership to `toNode`, which must be a voter of the shard.
 */
async function transferLeader(tally: CliClient, shardId: number, toNode: number, options: GlobalOptions): Promise<string | object> {
  await tally.connect();
  const route = (await tally.routes()).shards.find((candidate) => candidate.shardId === shardId);
  if (route === undefined) throw new UsageError(`shard ${shardId} does not exist`);
  if (!route.replicas.some((replica) => replica.nodeId === String(toNode) && replica.role === "voter")) {
    throw new UsageError(
      `node ${toNode} is not a voter of shard ${shardId} (voters ${route.replicas
        .filter((r) => r.role === "voter")
        .map((r) => r.nodeId)
        .join(", ")})`,
    );
  }
  const addresses = route.leaderAddress
    ? [route.leaderAddress, ...route.replicas.map((r) => r.address)]
    : route.replicas.map((r) => r.address);
  let lastError: unknown;
  for (const address of [...new Set(addresses)]) {
    try {
      await tally.admin("TransferLeader", { shardId, toNode: String(toNode) }, { deadlineMs: options.timeout, address });
      const summary = `shard ${shardId}: leadership transfer to node ${toNode} requested (was node ${route.leaderId ?? "unknown"})`;
      return options.json ? { shardId, toNode: String(toNode), summary } : summary;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

export function addShardCommands(program: Command, withClient: WithClient): void {
  const shard = program.command("shard").description("shard placement: move, split");
  shard
    .command("move")
    .description("move one replica of SHARD from node FROM to node TO (learner, catch up, promote, remove; resumable)")
    .argument("<shard>", "shard id", shardIdArgument)
    .requiredOption("--from <node>", "node giving up its replica", nodeIdArgument("--from"))
    .requiredOption("--to <node>", "node receiving the replica", nodeIdArgument("--to"))
    .action(async (id: number, commandOptions: { from: number; to: number }, command: Command) =>
      withClient(command, async (tally, options) =>
        changeOutput(
          await tally.admin(
            "ShardMove",
            { shardId: id, fromNode: String(commandOptions.from), toNode: String(commandOptions.to) },
            { deadlineMs: options.timeout },
          ),
          options.json === true,
        ),
      ),
    );

  shard
    .command("split")
    .description("split SHARD's slot range in two; the new shard takes slots from SLOT on (default: where its recent load halves)")
    .argument("<shard>", "shard id", shardIdArgument)
    .option("--at <slot>", "first slot of the new shard", splitSlot)
    .action(async (id: number, commandOptions: { at?: number }, command: Command) =>
      withClient(command, async (tally, options) =>
        changeOutput(
          await tally.admin("ShardSplit", { shardId: id, atSlot: commandOptions.at ?? 0 }, { deadlineMs: options.timeout }),
          options.json === true,
        ),
      ),
    );

  program
    .command("leader")
    .description("leadership: transfer")
    .command("transfer")
    .description("hand the leadership of SHARD to node TO (a voter of the shard)")
    .argument("<shard>", "shard id", shardIdArgument)
    .requiredOption("--to <node>", "the new leader", nodeIdArgument("--to"))
    .action(async (id: number, commandOptions: { to: number }, command: Command) =>
      withClient(command, (tally, options) => transferLeader(tally, id, commandOptions.to, options)),
    );
}
