import { Counter, type Registry } from 'prom-client'
import type { Redis } from '../../lib/redis.ts'

export { AGGREGATES_EPOCH_KEY, AGGREGATES_GENERATION_KEY, AGGREGATES_LAST_LOAD_KEY, bumpAggregatesGeneration, markAggregatesLoad } from '../../lib/aggregates-generation.ts'
import { readAggregateVersions } from '../../lib/aggregates-generation.ts'

/**
 * How an answer was served. `hit`: all from the cache; `partial`: closed periods from
 * the cache, the rest queried; `miss`: queried; `bypass`: queried, nothing of it may be
 * kept (open periods); `unavailable`: queried because Redis could not answer.
 */
export type CacheOutcome = 'hit' | 'partial' | 'miss' | 'bypass' | 'unavailable'

/**
 * The `Cache-Status` header (RFC 9211) of an answer, so a client or a benchmark can tell
 * a cached answer from a queried one.
 *
 * @example
 * c.header('cache-status', cacheStatus('partial', true)) // 'analytics; fwd=partial; stored'
 */
export function cacheStatus(outcome: CacheOutcome, stored = false): string {
  if (outcome === 'hit') return 'analytics; hit'
  const fwd = outcome === 'unavailable' ? 'bypass; detail=redis-unavailable' : outcome
  return `analytics; fwd=${fwd}${stored ? '; stored' : ''}`
}

/** Key of one part of a key, so that no id can run into the next part. */
export const keyPart = (s: string): string => encodeURIComponent(s)

/**
 * Stats and top answers of closed periods kept in Redis, shared by every process.
 * Every call fails open: when Redis cannot answer, reads say so (null) and writes are
 * dropped, and the caller runs its query as if there were no cache.
 */
export function createAggregateCache(redis: Redis, registry?: Registry) {
  const counter = registry ? cacheCounter(registry) : undefined
  const quiet = async <T>(p: Promise<T>): Promise<T | null> => {
    try {
      return await p
    } catch {
      return null
    }
  }
  type Versions = { ns: string; data: string | null } | null
  const readVersions = async (): Promise<Versions> => {
    const read = await quiet(readAggregateVersions(redis))
    if (read === null) return null
    const { generation, load } = read
    return { ns: `cs:agg:${generation}:`, data: load ? `${generation}.${load}` : null }
  }
  /**
   * Callers of versions() waiting for the next read. Every request reads the versions, so
   * calls are answered in rounds: one read for all the calls made before it was sent, and
   * calls made while it is in flight wait for the next (a read sent before a call began
   * could miss a load marked just before it). A CPU profile of the API under live ingest
   * gave the read's commands through ioredis about 5 % of its thread, one per request.
   */
  let waiting: ((v: Versions) => void)[] = []
  let reading = false
  const round = async (): Promise<void> => {
    reading = true
    const callers = waiting
    waiting = []
    let v: Versions = null
    try {
      v = await readVersions()
    } finally {
      for (const resolve of callers) resolve(v)
      reading = false
      if (waiting.length > 0) void round()
    }
  }
  return {
    /**
     * In one round trip: this generation's key prefix (`ns`, for answers over closed
     * periods) and the version of the data (`data`: the generation and the id of the
     * latest load into ClickHouse, for answers over open periods; null while no load is
     * known); null when Redis cannot answer. Read after the call began, shared with the
     * calls made while waiting for that read (see above).
     */
    versions(): Promise<Versions> {
      return new Promise((resolve) => {
        waiting.push(resolve)
        if (!reading) void round()
      })
    },
    /** Fields of a hash (null where absent), or null when Redis cannot answer. */
    getFields(key: string, fields: string[]): Promise<(string | null)[] | null> {
      return fields.length === 0 ? Promise.resolve([]) : quiet(redis.hmget(key, ...fields))
    },
    /**
     * Adds fields to a hash; the hash expires `ttlSeconds` after it was created, so no field
     * outlives that. Not waited for (see `set`), and sent only once the current turn of the
     * event loop is over: the 32 answers of a cold burst, which one batch query resolves in the
     * same turn, all waited for the 32 MULTIs to be built and sent (in a trace of bench:api on
     * 6 December, the batch query's end to the last answer 6.7 ms a burst, 1.4 deferred). A read
     * of the same hash in that turn misses and queries; this process's readers keep the rows anyway.
     */
    setFields(key: string, values: Record<string, string>, ttlSeconds: number): void {
      if (Object.keys(values).length === 0) return
      setImmediate(() => void quiet(redis.multi().hset(key, values).expire(key, ttlSeconds, 'NX').exec()))
    },
    /** A value, or null when absent or Redis cannot answer. */
    get(key: string): Promise<string | null> {
      return quiet(redis.get(key))
    },
    /**
     * Writes a value with a TTL. The command is sent before this returns and its reply is not
     * waited for, so an answer does not wait on the cache (a cold burst's answers waited 2–8 ms
     * for it in a trace of the API): a read made later through this cache comes after it on
     * the same connection, and a write that fails is dropped (the next read queries).
     */
    set(key: string, value: string, ttlSeconds: number): void {
      void quiet(redis.set(key, value, 'EX', ttlSeconds))
    },
    /** Counts an answer in `cs_analytics_cache_answers_total`. */
    count(endpoint: string, outcome: CacheOutcome): void {
      counter?.inc({ endpoint, outcome })
    },
  }
}

export type AggregateCache = ReturnType<typeof createAggregateCache>

function cacheCounter(registry: Registry): Counter<'endpoint' | 'outcome'> {
  const name = 'cs_analytics_cache_answers_total'
  const existing = registry.getSingleMetric(name)
  if (existing instanceof Counter) return existing as Counter<'endpoint' | 'outcome'>
  return new Counter({ name, help: 'Analytics answers by endpoint and how the cache served them (hit, partial, miss, bypass, unavailable)', labelNames: ['endpoint', 'outcome'] as const, registers: [registry] })
}
