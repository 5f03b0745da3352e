import type { Redis } from './redis.ts'

/**
 * Counter that every cached stats and top answer's key includes (analytics/cache), with
 * AGGREGATES_EPOCH_KEY. Bumping it drops them all at once, in every process, in Redis and
 * in the processes' memory. The edge bumps it when rows
 * reach ClickHouse late (a repaired flush, a load held up by an outage), the one way a
 * closed day can still change. The three keys here share the hash tag `{aggregates}`, so
 * that one MGET reads them on a Redis Cluster too.
 */
export const AGGREGATES_GENERATION_KEY = 'cs:{aggregates}:generation'

export async function bumpAggregatesGeneration(redis: Redis): Promise<void> {
  await redis.incr(AGGREGATES_GENERATION_KEY)
}

/**
 * A random id of this Redis's data, set together with the generation: the generation, a
 * counter, starts again at 0 in a Redis that lost its data, and the epoch beside it tells
 * that generation from the one of the same number before, whose answers analytics may
 * still keep in memory.
 */
export const AGGREGATES_EPOCH_KEY = 'cs:{aggregates}:epoch'

/**
 * The generation (with its epoch: `<epoch>.<counter>`) and the id of the latest load (null
 * while none is known), in one round trip. Where the counter or the epoch is missing (a
 * new Redis, or one that lost them), a new epoch is set first, so no generation of before
 * can come back.
 */
export async function readAggregateVersions(redis: Redis): Promise<{ generation: string; load: string | null }> {
  let [generation, load, epoch] = await redis.mget(AGGREGATES_GENERATION_KEY, AGGREGATES_LAST_LOAD_KEY, AGGREGATES_EPOCH_KEY)
  if (generation === null || epoch === null) {
    const res = await redis.multi().set(AGGREGATES_EPOCH_KEY, crypto.randomUUID()).set(AGGREGATES_GENERATION_KEY, '0', 'NX').mget(AGGREGATES_GENERATION_KEY, AGGREGATES_LAST_LOAD_KEY, AGGREGATES_EPOCH_KEY).exec()
    const read = res?.at(-1)
    if (!read || read[0]) throw read?.[0] ?? new Error('reading the aggregate versions failed')
    ;[generation, load, epoch] = read[1] as (string | null)[]
  }
  return { generation: `${epoch}.${generation}`, load: load ?? null }
}

/**
 * The latest load into raw_events: a new random id set by the edge after each load (at
 * most one per LOAD_INTERVAL_MS and edge). Analytics reuses an answer over open periods
 * only while this id has not changed since the answer was computed, so such an answer is
 * as fresh as a new query; while the key is missing (no load yet, or Redis restarted
 * empty) nothing is reused. Random rather than a counter, so that a Redis that lost its
 * data can never bring back an id an old answer was kept under. Anything else that
 * writes into raw_events must mark its loads too.
 */
export const AGGREGATES_LAST_LOAD_KEY = 'cs:{aggregates}:last-load'

export async function markAggregatesLoad(redis: Redis): Promise<void> {
  await redis.set(AGGREGATES_LAST_LOAD_KEY, crypto.randomUUID())
}
