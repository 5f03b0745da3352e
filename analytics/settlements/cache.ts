import type { Redis } from '../../lib/redis.ts'
import { settlementVersion } from '../../jobs/settlement/version.ts'
import type { CacheOutcome } from '../cache/aggregate-cache.ts'
import { singleFlight } from '../http/single-flight.ts'

export type SettlementCacheOptions = { maxEntries?: number; maxRowsPerEntry?: number; ttlMs?: number }

/**
 * Settlement answers change only when a settlement run commits, so they are kept in
 * memory keyed by the settlement version in Redis (bumped by every commit, from any
 * process) and by the query. Entries also expire after `ttlMs`, which bounds staleness
 * should a bump ever be lost. Without Redis the cache is skipped, never trusted.
 *
 * @example
 * const cache = createSettlementCache(redis)
 * const { rows, outcome } = await cache.get('totals', query, () => settlementTotals(ch, query))
 */
export function createSettlementCache(redis: Redis, opts: SettlementCacheOptions = {}) {
  const maxEntries = opts.maxEntries ?? 2_000
  const maxRows = opts.maxRowsPerEntry ?? 5_000
  const ttlMs = opts.ttlMs ?? 60_000
  const entries = new Map<string, { rows: unknown[]; expires: number }>()
  const shared = singleFlight<unknown[]>()
  return {
    async get<T>(kind: string, query: object, compute: () => Promise<T[]>): Promise<{ rows: T[]; outcome: CacheOutcome }> {
      const version = await settlementVersion(redis)
      if (version === null) return { rows: await compute(), outcome: 'unavailable' }
      const key = `${version}|${kind}|${JSON.stringify(query)}`
      const hit = entries.get(key)
      if (hit && hit.expires > Date.now()) {
        // Most recently used last, so the first key is the one to evict.
        entries.delete(key)
        entries.set(key, hit)
        return { rows: hit.rows as T[], outcome: 'hit' }
      }
      // Identical requests arriving together share one query instead of queueing copies of it
      // (the key holds the kind, so the shared rows are of this kind).
      const rows = (await shared(key, compute)) as T[]
      if (rows.length <= maxRows) {
        entries.delete(key)
        entries.set(key, { rows, expires: Date.now() + ttlMs })
        while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string)
      }
      return { rows, outcome: rows.length <= maxRows ? 'miss' : 'bypass' }
    },
    get size(): number {
      return entries.size
    },
  }
}
