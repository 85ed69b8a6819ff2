/**
 * The compose rehearsal's client (test/deploy/compose.docker.ts), bundled and run in a container on
 * the compose network: the TypeScript client routes by the cluster's map, which names the nodes by
 * their advertised host names (tally-1:7000 ...), resolvable only on that network.
 *
 *   node client.mjs <endpoints> add <prefix> <keys> <increments>   one add of 1 per increment, spread
 *                                                                  over <keys> keys; prints {"added":n}
 *   node client.mjs <endpoints> read <prefix> <keys>               linearizable reads; prints
 *                                                                  {"values":{key:"n"},"applied":{key:"i"}}
 *
 * Any failed call fails the run (exit 1, the error on stderr): an ambiguous add would make the
 * exact count unknowable, and the rehearsal must say so rather than guess.
 */
import { TallyClient } from "../../src/index.js";

const ADDS_IN_FLIGHT_MAX = 64;

async function addAll(client: TallyClient, prefix: string, keys: number, increments: number): Promise<number> {
  let next = 0;
  let added = 0;
  const worker = async () => {
    while (next < increments) {
      const i = next++;
      await client.add(`${prefix}-${i % keys}`, 1n, { deadlineMs: 30_000 });
      added++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(ADDS_IN_FLIGHT_MAX, increments) }, worker));
  return added;
}

async function readAll(
  client: TallyClient,
  prefix: string,
  keys: number,
): Promise<{ values: Record<string, string>; applied: Record<string, string> }> {
  const values: Record<string, string> = {};
  const applied: Record<string, string> = {};
  for (let k = 0; k < keys; k++) {
    const read = await client.get(`${prefix}-${k}`, { deadlineMs: 30_000 });
    values[`${prefix}-${k}`] = read.value.toString();
    applied[`${prefix}-${k}`] = read.appliedIndex.toString();
  }
  return { values, applied };
}

function count(text: string | undefined, what: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${what} must be a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

async function main(): Promise<void> {
  const [endpoints, command, prefix, keys, increments] = process.argv.slice(2);
  if (endpoints === undefined || prefix === undefined || (command !== "add" && command !== "read")) {
    throw new Error("usage: client.mjs <host:port,...> add <prefix> <keys> <increments> | read <prefix> <keys>");
  }
  const client = new TallyClient({ endpoints: endpoints.split(","), deadlineMs: 30_000 });
  try {
    await client.connect();
    const result =
      command === "add"
        ? { added: await addAll(client, prefix, count(keys, "keys"), count(increments, "increments")) }
        : await readAll(client, prefix, count(keys, "keys"));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await client.close();
  }
}

// Exits as soon as the answer is out: on this box, name lookups for the nodes' host names that
// Docker's resolver forwards upstream (no internet here) kept the libuv threadpool, and so the
// process, alive for ~27 s after close() with no handle of the client's left open.
main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`rehearsal-client: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
