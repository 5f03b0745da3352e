import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { keyPart, type AggregateCache, type CacheOutcome } from '../cache/aggregate-cache.ts'
import { closedPeriods, lastClosedDay, type ClosingRules } from '../cache/closed-days.ts'
import { batcher } from '../http/batch.ts'
import { periodEnd, periodsBetween } from '../http/dates.ts'
import { singleFlight } from '../http/single-flight.ts'
import { statsRow, videoStatsMany, type StatsQuery, type StatsRow } from './queries.ts'

export type StatsAnswer = { rows: StatsRow[]; outcome: CacheOutcome; stored: boolean }

/**
 * Answers stats queries: the rows of closed periods from the cache (a Redis hash per
 * video and grain, one field per period, so what it holds is bounded by the data, not
 * by how many ranges are asked for), the rest from ClickHouse. Queries of concurrent
 * requests run as one batched query, and identical ones share it. Rows of open periods
 * are never kept: they are as fresh as a query. `concurrency`: batches run at once (1
 * for embedded chDB, which runs one query at a time).
 *
 * @example
 * const read = createStatsReader({ ch, cache, rules: settings, now: () => new Date(), closedTtlSeconds: 86_400 })
 * const { rows, outcome } = await read({ videoId, creatorId, grain: 'day', from: '2026-03-01', to: '2026-03-31' })
 */
export function createStatsReader(deps: { ch: ClickHouseClient; cache: AggregateCache; rules: ClosingRules; now: () => Date; closedTtlSeconds: number; concurrency?: number }) {
  const { cache } = deps
  const batched = batcher((qs: StatsQuery[]) => videoStatsMany(deps.ch, qs), { concurrency: deps.concurrency ?? 1 })
  const shared = singleFlight<StatsRow[]>()
  const query = (q: StatsQuery) => shared(JSON.stringify(q), () => batched(q))

  return async function readStats(q: StatsQuery): Promise<StatsAnswer> {
    const periods = periodsBetween(q.grain, q.from, q.to)
    const closed = closedPeriods(q.grain, periods, lastClosedDay(deps.rules, deps.now()))
    // The last year may be cut by `to` (a year counts months up to the one holding `to`): then it is not kept.
    const cut = q.grain === 'year' && periodEnd('year', periods.at(-1)!) > q.to
    const keep = new Set(periods.filter((_, i) => closed[i] && !(cut && i === periods.length - 1)))
    if (deps.closedTtlSeconds === 0 || keep.size === 0) return { rows: await query(q), outcome: 'bypass', stored: false }
    const ns = await cache.namespace()
    const key = `${ns}stats:${keyPart(q.creatorId)}:${keyPart(q.videoId)}:${q.grain}`
    const fields = [...keep]
    const cached = ns === null ? null : await cache.getFields(key, fields)
    if (cached === null) return { rows: await query(q), outcome: 'unavailable', stored: false }

    const found = new Map<string, StatsRow>()
    fields.forEach((p, i) => {
      const row = parseRow(cached[i] ?? null)
      if (row?.period === p) found.set(p, row)
    })
    const served = periods.findIndex((p) => !found.has(p))
    if (served === -1) return { rows: periods.map((p) => found.get(p)!), outcome: 'hit', stored: false }

    // One query from the first period the cache lacks to the end (usually the open days).
    const queried = await query({ ...q, from: periods[served]! })
    const fresh = queried.filter((r) => keep.has(r.period) && !found.has(r.period))
    await cache.setFields(key, Object.fromEntries(fresh.map((r) => [r.period, JSON.stringify(r)])), deps.closedTtlSeconds)
    return { rows: [...periods.slice(0, served).map((p) => found.get(p)!), ...queried], outcome: served > 0 ? 'partial' : 'miss', stored: fresh.length > 0 }
  }
}

function parseRow(text: string | null): StatsRow | undefined {
  if (text === null) return undefined
  try {
    const parsed = statsRow.safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
