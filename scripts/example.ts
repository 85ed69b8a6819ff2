/**
 * A runnable tour of the client library against a local cluster:
 *
 *   npm start                    # in one terminal: a local cluster (writes cluster.yaml)
 *   npx tsx scripts/example.ts   # in another
 *
 * Endpoints come from $TALLY_ENDPOINTS or ./cluster.yaml, like tallyctl.
 */
import { resolveEndpoints } from "../src/cli/endpoints.js";
import { AmbiguousError, BatchError, OutOfRangeError, TallyClient } from "../src/client/index.js";

const endpoints = await resolveEndpoints(undefined, process.env, process.cwd());
const client = new TallyClient({ endpoints });

try {
  // Exact 64-bit counters: bigint in, bigint out.
  const liked = await client.add("post:42:likes");
  console.log(`post:42:likes = ${liked.value} (version ${liked.version}, fence ${liked.fence.term}/${liked.fence.index})`);

  // Concurrent adds to one shard are batched into one request, each applied exactly once.
  await Promise.all(Array.from({ length: 1_000 }, () => client.add("page:/home:views", 1n)));
  const views = await client.get("page:/home:views");
  console.log(`page:/home:views = ${views.value} (applied index ${views.appliedIndex})`);

  // A floor: the decrement fails instead of going below zero.
  await client.set("sku:123:stock", 2n);
  try {
    await client.add("sku:123:stock", -3n, { floor: 0n });
  } catch (error) {
    console.log(`sku:123:stock -3 refused: ${(error as Error).message}`);
  }

  // Optimistic concurrency with compareAndSet on the counter's version.
  const stock = await client.get("sku:123:stock");
  const swapped = await client.compareAndSet("sku:123:stock", stock.version, 10n);
  console.log(`sku:123:stock = ${swapped.value} after compareAndSet at version ${stock.version}`);

  // Overflow is an error and changes nothing.
  await client.set("quota:max", 2n ** 63n - 1n);
  await client.add("quota:max", 1n).catch((error: unknown) => {
    if (error instanceof OutOfRangeError) console.log("quota:max + 1 refused: int64 overflow");
    else throw error;
  });

  // Several counters at once: atomic per shard, in the caller's order.
  const results = await client.addBatch([
    { key: "votes:a", delta: 1n },
    { key: "votes:b", delta: 2n },
    { op: "set", key: "votes:c", value: 7n },
  ]);
  console.log(`votes: ${results.map((result) => result.value).join(", ")}`);

  // Monotonic stale reads: any replica, but at least as new as a write we saw.
  const fresh = await client.get("votes:b", { consistency: "stale", minIndex: results[1]!.fence.index });
  console.log(`votes:b (stale, minIndex ${results[1]!.fence.index}) = ${fresh.value}`);

  const routes = await client.routes();
  console.log(`${routes.shards.length} shards: ${routes.shards.map((shard) => `${shard.shardId}@${shard.leaderId ?? "?"}`).join(" ")}`);
} catch (error) {
  if (error instanceof AmbiguousError) console.error(`ambiguous (may or may not have been applied): ${error.message}`);
  else if (error instanceof BatchError) console.error(`batch failed: ${error.message}`);
  else console.error(error);
  process.exitCode = 1;
} finally {
  await client.close();
}
