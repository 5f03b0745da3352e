import type { Redis } from './redis.ts'

/**
 * Counter that every cached stats and top answer's key includes (analytics/cache).
 * Bumping it drops them all at once, in every process. The edge bumps it when rows
 * reach ClickHouse late (a repaired flush, a load held up by an outage), the one way a
 * closed day can still change.
 */
export const AGGREGATES_GENERATION_KEY = 'cs:aggregates:generation'

export async function bumpAggregatesGeneration(redis: Redis): Promise<void> {
  await redis.incr(AGGREGATES_GENERATION_KEY)
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
export const AGGREGATES_LAST_LOAD_KEY = 'cs:aggregates:last-load'

export async function markAggregatesLoad(redis: Redis): Promise<void> {
  await redis.set(AGGREGATES_LAST_LOAD_KEY, crypto.randomUUID())
}
