/**
 * tallyctl rebalance, failover, recover and routes: the placement of every shard at once, as the
 * placement controller plans it, and the partition map as it is.
 */
import type { Command } from "commander";
import { nodeIdArgument, shardIdArgument } from "./arguments.js";
import type { CliClient, CliIo, GlobalOptions, WithClient } from "./command-types.js";
import { UsageError } from "./exit-codes.js";
import { changeOutput, formatRoutes } from "./format.js";
import { formatPlan, type ClusterMapReply, type PlanReply } from "./format-map.js";

/**
 * Makes `nodeId`'s replica the only voter of the shard, asked of that node itself (the shard has
 * no quorum to ask). Refused without --unsafe; warns on stderr before it starts.
 */
async function recoverUnsafe(
  tally: CliClient,
  shardId: number,
  recovery: { node: number; unsafe?: boolean },
  options: GlobalOptions,
  io: Pick<CliIo, "stderr">,
): Promise<string | object> {
  if (!recovery.unsafe) {
    throw new UsageError(
      "recover needs --unsafe: it makes one replica the whole shard, and writes acknowledged by the lost replicas beyond what it holds are LOST",
    );
  }
  io.stderr(
    `WARNING: unsafe recovery of shard ${shardId} from node ${recovery.node}: acknowledged writes may be lost; use only when the other replicas are gone for good\n`,
  );
  const deadline = { deadlineMs: options.timeout };
  const map = await tally.admin<ClusterMapReply>("ClusterMap", {}, deadline);
  const address = map.nodes.find((candidate) => candidate.nodeId === String(recovery.node))?.clientAddress;
  if (address === undefined) throw new UsageError(`node ${recovery.node} is not in the cluster`);
  return changeOutput(
    await tally.admin("RecoverUnsafe", { shardId, iUnderstandDataLoss: true }, { ...deadline, address }),
    options.json === true,
  );
}

export function addPlacementCommands(program: Command, withClient: WithClient, io: Pick<CliIo, "stderr">): void {
  program
    .command("rebalance")
    .description("the moves and leader transfers the placement controller would make (--plan, the default) or starts them (--apply)")
    .option("--plan", "show the plan only")
    .option("--apply", "start the planned moves and transfers")
    .action(async (commandOptions: { plan?: boolean; apply?: boolean }, command: Command) =>
      withClient(command, async (tally, options) => {
        if (commandOptions.plan && commandOptions.apply) throw new UsageError("--plan and --apply exclude each other");
        const reply = await tally.admin<PlanReply>("Rebalance", { apply: commandOptions.apply === true }, { deadlineMs: options.timeout });
        return options.json ? reply : formatPlan(reply);
      }),
    );

  program
    .command("failover")
    .description("move every leadership off NODE now (to up-to-date voters elsewhere)")
    .argument("<node>", "node id", nodeIdArgument("NODE"))
    .action(async (id: number, _options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        const reply = await tally.admin<PlanReply>("Failover", { nodeId: String(id) }, { deadlineMs: options.timeout });
        return options.json ? reply : formatPlan(reply);
      }),
    );

  program
    .command("recover")
    .description("UNSAFE, last resort: make NODE's replica the only voter of SHARD after its quorum is lost for good")
    .argument("<shard>", "shard id", shardIdArgument)
    .requiredOption("--node <node>", "the surviving replica to continue from", nodeIdArgument("--node"))
    .option("--unsafe", "required: acknowledged writes the lost replicas held may be gone")
    .action(async (id: number, commandOptions: { node: number; unsafe?: boolean }, command: Command) =>
      withClient(command, (tally, options) => recoverUnsafe(tally, id, commandOptions, options, io)),
    );

  program
    .command("routes")
    .description("the partition map: shards, slot ranges, epochs, leaders, replicas")
    .action(async (_options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        const routes = await tally.routes();
        return options.json ? routes : formatRoutes(routes);
      }),
    );
}
