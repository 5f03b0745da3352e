import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { keyPart, type AggregateCache, type CacheOutcome } from '../cache/aggregate-cache.ts'
import { isClosedPeriod, lastClosedDay, type ClosingRules } from '../cache/closed-days.ts'
import { periodStart } from '../http/dates.ts'
import { singleFlight } from '../http/single-flight.ts'
import { openAnswers } from '../cache/open-answers.ts'
import { MAX_TOP_LIMIT, rankedTopRow, thresholdHints, thresholdKey, topVideos, type TopOptions, type TopQuery, type TopRow } from './queries.ts'

/**
 * The tops computed and kept: the shortest of these at least as long as the one asked for.
 * A platform top costs more the longer it is (its threshold is lower; on a day of 4.5M
 * videos 0.15 s for 5 rows, 0.7 s for 100), and most screens ask for a few rows.
 */
const KEPT_LENGTHS = [10, MAX_TOP_LIMIT]
const keptLength = (limit: number) => KEPT_LENGTHS.find((n) => n >= limit) ?? MAX_TOP_LIMIT

/** How long a platform top's threshold is kept in Redis after its last ranking: longer than a month stays open. */
const THRESHOLD_TTL_SECONDS = 45 * 86_400

export type TopAnswer = { period: string; rows: TopRow[]; outcome: CacheOutcome; stored: boolean }

/** A cached top: a kept length of it (shorter ones are its first rows), when and whether its period was closed. */
const entry = z.object({ at: z.number(), closed: z.boolean(), rows: z.array(rankedTopRow) })

/**
 * Answers top queries. The top of a closed period is kept (per scope, grain, period
 * and metric) for `closedTtlSeconds`; the platform-wide top of an open period, a
 * query over every video of the period, for `platformOpenTtlSeconds` (in Redis, shared by
 * every process); any other top of an open period is reused in this process only until
 * the next load into ClickHouse (`openMaxAgeMs`, see openAnswers). Tops of 10 and of 100 rows are kept
 * (KEPT_LENGTHS) and cut to the limit asked for: ranks are a total order (ties broken by video id), so its first rows are
 * exactly the shorter top. Identical concurrent queries share one run.
 *
 * @example
 * const read = createTopReader({ ch, cache, rules: settings, now: () => new Date(), closedTtlSeconds: 86_400, platformOpenTtlSeconds: 5 })
 * const { period, rows } = await read({ metric: 'views', grain: 'day', date: '2026-03-02', limit: 5 })
 */
export function createTopReader(deps: {
  ch: ClickHouseClient
  cache: AggregateCache
  rules: ClosingRules
  now: () => Date
  closedTtlSeconds: number
  platformOpenTtlSeconds: number
  /** How long a top of an open period not kept in Redis may be reused while no load has landed (0: always queried). */
  openMaxAgeMs?: number
  /** Told how each platform ranking was read (tests). */
  onRead?: TopOptions['onRead']
}) {
  const { cache } = deps
  const shared = singleFlight<{ period: string; rows: TopRow[] }>()
  // The platform tops' thresholds, so that ranking an open period again (every few seconds under live ingest) reads it once.
  const hints = thresholdHints()
  const query = (q: TopQuery) => shared(JSON.stringify(q), () => (q.creatorId === undefined ? rankPlatform(q) : topVideos(deps.ch, q)))
  const fill = singleFlight<{ period: string; rows: TopRow[] }>()

  /**
   * A platform ranking, its threshold also kept in Redis (outside the aggregates
   * generation: a threshold is checked before it is trusted), so that every process, and
   * one just started, ranks by the last threshold any of them read.
   */
  async function rankPlatform(q: TopQuery) {
    const key = thresholdKey(q)
    const redisKey = `top-threshold:${key}`
    if (hints.get(key) === undefined) {
      const kept = Number(await cache.get(redisKey))
      if (Number.isSafeInteger(kept) && kept > 0) hints.set(key, kept)
    }
    const before = hints.get(key)
    const out = await topVideos(deps.ch, q, { hints, onRead: deps.onRead })
    const after = hints.get(key)
    // A threshold that was not met and not replaced is cleared there too ('0': none).
    if (after !== before) cache.set(redisKey, String(after ?? 0), THRESHOLD_TTL_SECONDS)
    return out
  }
  const openMaxAgeMs = deps.openMaxAgeMs ?? 0
  const open = openAnswers<{ period: string; rows: TopRow[] }>({ maxAgeMs: openMaxAgeMs, now: () => deps.now().getTime() })

  return async function readTop(q: TopQuery): Promise<TopAnswer> {
    const now = deps.now().getTime()
    const period = periodStart(q.grain, q.date)
    const closed = isClosedPeriod(q.grain, period, lastClosedDay(deps.rules, new Date(now)))
    const ttl = closed ? deps.closedTtlSeconds : q.creatorId === undefined ? deps.platformOpenTtlSeconds : 0
    if (ttl === 0 && openMaxAgeMs === 0) return { ...(await query(q)), outcome: 'bypass', stored: false }
    const versions = await cache.versions()
    if (versions === null) return { ...(await query(q)), outcome: 'unavailable', stored: false }
    if (ttl === 0) {
      // The kept top, reused while no load has landed, cut to the limit asked for.
      const longest = { ...q, limit: keptLength(q.limit) }
      const { value, reused, stored } = await open(versions.data, JSON.stringify(longest), () => query(longest))
      return { period, rows: value.rows.slice(0, q.limit), outcome: reused ? 'hit' : stored ? 'miss' : 'bypass', stored }
    }
    const ns = versions.ns

    const scope = q.creatorId === undefined ? 'platform' : `creator=${keyPart(q.creatorId)}`
    const length = keptLength(q.limit)
    const key = `${ns}top:${scope}:${q.grain}:${period}:${q.metric}:${length}`
    const hit = parseEntry(await cache.get(key))
    // Redis expires an entry after its TTL; the age check also holds when this clock is not Redis's.
    if (hit && (hit.closed || now - hit.at < deps.platformOpenTtlSeconds * 1000)) return { period, rows: hit.rows.slice(0, q.limit), outcome: 'hit', stored: false }

    // Concurrent misses of one entry share its query and its one write to Redis.
    const longest = await fill(key, async () => {
      const answer = await query({ ...q, limit: length })
      // Not waited for (see the cache's set): later reads through this cache come after it.
      cache.set(key, JSON.stringify({ at: now, closed, rows: answer.rows }), ttl)
      return answer
    })
    return { period, rows: longest.rows.slice(0, q.limit), outcome: 'miss', stored: true }
  }
}

function parseEntry(text: string | null): z.infer<typeof entry> | undefined {
  if (text === null) return undefined
  try {
    const parsed = entry.safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
