/**
 * The counter kinds (windowed counters, rate limits, unique counts, TTL, top-K, aggregates) against
 * a local cluster:
 *
 *   npm start                          # in one terminal
 *   npx tsx scripts/kinds-example.ts   # in another
 *
 * Endpoints come from $TALLY_ENDPOINTS or ./cluster.yaml, like tallyctl.
 */
import { resolveEndpoints } from "../src/cli/endpoints.js";
import { TallyClient } from "../src/client/index.js";

const endpoints = await resolveEndpoints(undefined, process.env, process.cwd());
const client = new TallyClient({ endpoints });

try {
  // Windowed counter: buckets of 1 s (kept 1 h), 1 min (1 day), 1 h (1 year); event time defaults
  // to the leader's time; late events up to 60 s are accepted.
  const now = Date.now();
  await Promise.all(Array.from({ length: 100 }, (_, i) => client.addWindowed("api:requests", 1n, { eventTimeMs: now - (i % 10) * 1_000 })));
  const toMs = Math.ceil((now + 1) / 1_000) * 1_000;
  const perSecond = await client.windowRange("api:requests", toMs - 10_000, toMs, 1_000, "sum");
  console.log(`api:requests per second, last 10 s: ${perSecond.points.map((p) => p.value).join(" ")}`);
  const lastTen = await client.windowRange("api:requests", toMs - 10_000, toMs, 10_000, "sum");
  console.log(`api:requests in the last 10 s: ${lastTen.points[0]!.value}`);

  // Rate limit: an exact sliding window, one replicated round trip, exactly once under retries.
  for (let i = 0; i < 4; i++) {
    const r = await client.tryAcquire("limit:user-7", 1, 3, 10_000);
    console.log(
      `limit:user-7 take 1 of 3/10s: ${r.allowed ? "allowed" : `denied, retry after ${r.retryAfterMs} ms`} (${r.remaining} remaining)`,
    );
  }

  // Unique counts (HyperLogLog, 0.81% standard error); the union of keys on different shards is
  // merged register by register, not summed.
  await client.uniqueAdd("visitors:mon", ["alice", "bob", "carol"]);
  await client.uniqueAdd("visitors:tue", ["bob", "dave"]);
  console.log(`distinct visitors mon+tue: ${(await client.uniqueCount(["visitors:mon", "visitors:tue"])).count}`);

  // TTL: the counter is deleted at the leader's time + ttlMs.
  await client.add("otp:attempts:alice", 1n, { ttlMs: 1_000 });
  console.log(`otp:attempts:alice exists: ${(await client.get("otp:attempts:alice")).exists}`);
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  console.log(`after 1.2 s it exists: ${(await client.get("otp:attempts:alice")).exists}`);

  // Top-K and aggregates over a key prefix, exact, merged across every shard.
  await client.addBatch([
    { key: "score:ann", delta: 42n },
    { key: "score:bo", delta: 17n },
    { key: "score:cy", delta: 99n },
  ]);
  const top = await client.topK("score:", 2);
  console.log(`top 2 scores: ${top.entries.map((e) => `${e.key.toString()}=${e.value}`).join(", ")} (from ${top.shards.length} shards)`);
  const agg = await client.aggregate("score:");
  console.log(`scores: count ${agg.count}, sum ${agg.sum}, min ${agg.min}, max ${agg.max}`);
} finally {
  await client.close();
}
