import type { Redis } from '../../lib/redis.ts'

/** Counter bumped whenever a settlement run commits: what readers cache settlement answers by. */
export const SETTLEMENT_VERSION_KEY = 'cs:settlement:version'

export async function bumpSettlementVersion(redis: Redis): Promise<void> {
  await redis.incr(SETTLEMENT_VERSION_KEY)
}

/** The current version, or null when Redis cannot say (callers then skip their cache). */
export async function settlementVersion(redis: Redis): Promise<string | null> {
  try {
    return (await redis.get(SETTLEMENT_VERSION_KEY)) ?? '0'
  } catch {
    return null
  }
}
