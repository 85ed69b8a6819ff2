/**
 * tallyctl status and endpoint health: is the cluster serving, and if not, what is wrong. Both
 * print a verdict and exit non-zero on trouble (src/cli/health.ts says which code means what).
 */
import type { Command } from "commander";
import { ClusterUnreachableError } from "../client/errors.js";
import { TallyError } from "../util/errors.js";
import type { CliClient, WithClient } from "./command-types.js";
import { WithExitCode } from "./exit-codes.js";
import { formatStatus } from "./format.js";
import { formatClusterMap, type ClusterMapReply } from "./format-map.js";
import {
  endpointHealthExitCode,
  formatCompactStatus,
  formatEndpointHealth,
  judgeEndpoint,
  statusVerdict,
  type EndpointHealth,
  type LocalStatusReply,
} from "./health.js";
import { humanTransportError, isTransportText } from "./human-errors.js";

/** One endpoint's status call gets at most this long (an unreachable node must not hold the others' lines). */
const ENDPOINT_CHECK_MS_MAX = 3_000;

/** The partition map from the metadata leader (liveness and load live there), or undefined. */
async function clusterMap(tally: CliClient, deadlineMs: number): Promise<ClusterMapReply | undefined> {
  try {
    let map = await tally.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs });
    const leaderAddress = map.fromMetaLeader ? undefined : map.nodes.find((n) => n.nodeId === map.metaLeaderId)?.clientAddress;
    if (leaderAddress !== undefined)
      map = await tally.admin<ClusterMapReply>("ClusterMap", {}, { deadlineMs, address: leaderAddress }).catch(() => map);
    return map;
  } catch {
    return undefined; // an older node, or no metadata leader yet: the group table still helps
  }
}

/** Whether the endpoint itself answered (with an error), and the problem in an operator's words. */
function problemOf(error: unknown): { answered: boolean; problem: string } {
  if (error instanceof ClusterUnreachableError)
    return { answered: false, problem: error.cause instanceof Error ? humanTransportError(error.cause.message) : "did not answer" };
  if (error instanceof TallyError && isTransportText(error.message))
    return { answered: false, problem: humanTransportError(error.message) };
  if (error instanceof TallyError) return { answered: true, problem: `${error.code}: ${error.message}` };
  return { answered: false, problem: error instanceof Error ? error.message : String(error) };
}

/** How `endpoint health` reaches one node: its health check, and its own status for the details. */
export interface EndpointProbe {
  endpoints(): string[];
  serving(address: string, deadlineMs: number): Promise<string>;
}

async function checkEndpoint(tally: CliClient, probe: EndpointProbe, endpoint: string, deadlineMs: number): Promise<EndpointHealth> {
  const started = performance.now();
  // Details only: a caller without the admin role, or an older node, still gets the verdict.
  const local = tally.admin<LocalStatusReply>("Status", { localOnly: true }, { deadlineMs, address: endpoint }).catch(() => undefined);
  try {
    const serving = await probe.serving(endpoint, deadlineMs);
    const tookMs = performance.now() - started;
    return judgeEndpoint(endpoint, tookMs, serving, await local);
  } catch (error) {
    await local;
    const { answered, problem } = problemOf(error);
    return { endpoint, healthy: false, problem, ...(answered ? { tookMs: performance.now() - started } : {}) };
  }
}

export function addHealthCommands(program: Command, withClient: WithClient, probe: EndpointProbe): void {
  program
    .command("status")
    .description(
      "a one-line verdict (healthy, degraded, unavailable), then one row per node and per shard; exit 0 healthy, 5 degraded, 6 unavailable",
    )
    .option(
      "-v, --verbose",
      "every node's view of every Raft group (role, term, leader, commit, applied, lag, lease) and the whole partition map",
    )
    .action(async (commandOptions: { verbose?: boolean }, command: Command) =>
      withClient(command, async (tally, options) => {
        const deadline = { deadlineMs: options.timeout };
        const status = await tally.status(deadline);
        const map = await clusterMap(tally, options.timeout);
        const verdict = statusVerdict(status, map);
        if (options.json)
          return new WithExitCode({ verdict: { state: verdict.state, line: verdict.line }, ...status, map }, verdict.exitCode);
        const text = commandOptions.verbose
          ? `${verdict.line}\n\n${formatStatus(status)}${map === undefined ? "\n(partition map unavailable)" : `\n\n${formatClusterMap(map)}`}`
          : formatCompactStatus(status, map, verdict);
        return new WithExitCode(text, verdict.exitCode);
      }),
    );

  program
    .command("endpoint")
    .description("per-endpoint checks: health")
    .command("health")
    .description(
      "the gRPC health check of every endpoint (SERVING when its /readyz is 200), a line each; exit 0 all healthy, 5 some unhealthy, 3 none answered",
    )
    .action(async (_options: object, command: Command) =>
      withClient(command, async (tally, options) => {
        const deadlineMs = Math.min(options.timeout, ENDPOINT_CHECK_MS_MAX);
        const results = await Promise.all(probe.endpoints().map((endpoint) => checkEndpoint(tally, probe, endpoint, deadlineMs)));
        return new WithExitCode(options.json ? { endpoints: results } : formatEndpointHealth(results), endpointHealthExitCode(results));
      }),
    );
}
