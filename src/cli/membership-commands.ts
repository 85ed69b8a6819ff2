/**
 * tallyctl node add|drain|remove|up: cluster membership, as changes to the partition map that the
 * metadata leader carries out (each prints its summary; --json the whole reply).
 */
import type { Command } from "commander";
import { nodeIdArgument } from "./arguments.js";
import type { WithClient } from "./command-types.js";
import { changeOutput } from "./format.js";

/** The node states an operator sets, with the verb that sets each. */
const NODE_STATE_VERBS = [
  ["drain", "draining", "move every replica and leadership off a node (it keeps serving until they are gone)"],
  ["remove", "removed", "remove a drained node from the cluster for good (refused while it holds replicas)"],
  ["up", "up", "return a drained or down node to service"],
] as const;

export function addMembershipCommands(program: Command, withClient: WithClient): void {
  const node = program.command("node").description("cluster membership: add, drain, remove, up");
  node
    .command("add")
    .description("admit a node to the partition map (then start tallyd for it; adding it to cluster.yaml and starting it also works)")
    .argument("<id>", "new node id (never reused)", nodeIdArgument("ID"))
    .requiredOption("--client <host:port>", "its client address")
    .requiredOption("--peer <host:port>", "its peer (Raft) address")
    .option("--zone <zone>", "its zone (replicas of a shard spread across zones)", "default")
    .option("--host <host>", "the machine it runs on (no shard keeps two replicas on one host); default: its id")
    .action(async (id: number, commandOptions: { client: string; peer: string; zone: string; host?: string }, command: Command) =>
      withClient(command, async (tally, options) =>
        changeOutput(
          await tally.admin(
            "NodeAdd",
            {
              nodeId: String(id),
              clientAddress: commandOptions.client,
              peerAddress: commandOptions.peer,
              zone: commandOptions.zone,
              host: commandOptions.host ?? "",
            },
            { deadlineMs: options.timeout },
          ),
          options.json === true,
        ),
      ),
    );
  for (const [verb, state, text] of NODE_STATE_VERBS) {
    node
      .command(verb)
      .description(text)
      .argument("<id>", "node id", nodeIdArgument("ID"))
      .action(async (id: number, _options: object, command: Command) =>
        withClient(command, async (tally, options) =>
          changeOutput(
            await tally.admin("NodeState", { nodeId: String(id), state }, { deadlineMs: options.timeout }),
            options.json === true,
          ),
        ),
      );
  }
}
