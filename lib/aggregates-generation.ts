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
