import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { periodStart, periodsBetween, type Grain } from '../http/dates.ts'

/**
 * Where each grain is read from: the aggregate table and its period column. A year
 * is the sum of its months (unique viewers: the month states merged). Identifiers
 * only, from this closed list; every value is a bound parameter.
 */
const SOURCES: Record<Grain, { table: string; period: string }> = {
  day: { table: 'video_stats_per_day', period: 'day' },
  week: { table: 'video_stats_per_week', period: 'week' },
  month: { table: 'video_stats_per_month', period: 'month' },
  year: { table: 'video_stats_per_month', period: 'toStartOfYear(month)' },
}

const statsRow = z.object({
  period: z.string(),
  views: z.coerce.number(),
  watch_ms: z.coerce.number(),
  ad_impressions: z.coerce.number(),
  unique_viewers: z.coerce.number(),
  excluded_self_view: z.coerce.number(),
  excluded_duplicate_viewer: z.coerce.number(),
  excluded_duplicate_ip: z.coerce.number(),
})
export type StatsRow = z.infer<typeof statsRow>
export const statsColumns = Object.keys(statsRow.shape) as (keyof StatsRow)[]

/**
 * One video's figures per period over [from, to], every period present (zeros where
 * nothing happened). Periods are whole: the week holding `from` counts all its days.
 */
export async function videoStats(ch: ClickHouseClient, q: { videoId: string; creatorId: string; grain: Grain; from: string; to: string }): Promise<StatsRow[]> {
  const { table, period } = SOURCES[q.grain]
  const rs = await ch.query({
    query: `SELECT toString(${period}) AS period,
                   sum(views) AS views, sum(watch_ms) AS watch_ms, sum(ad_impressions) AS ad_impressions,
                   uniqExactMerge(unique_viewers) AS unique_viewers,
                   sum(excluded_self_view) AS excluded_self_view,
                   sum(excluded_duplicate_viewer) AS excluded_duplicate_viewer,
                   sum(excluded_duplicate_ip) AS excluded_duplicate_ip
            FROM ${table}
            WHERE creator_id = {creator:String} AND video_id = {video:String} AND ${SOURCES[q.grain === 'year' ? 'month' : q.grain].period} BETWEEN {from:Date} AND {to:Date}
            GROUP BY period ORDER BY period`,
    // creator_id narrows the primary index (period, creator_id, video_id) to one creator's rows.
    query_params: { creator: q.creatorId, video: q.videoId, from: periodStart(q.grain, q.from), to: q.to },
    format: 'JSONEachRow',
  })
  const found = new Map((await rs.json()).map((r) => statsRow.parse(r)).map((r) => [r.period, r]))
  return periodsBetween(q.grain, q.from, q.to).map(
    (p) => found.get(p) ?? { period: p, views: 0, watch_ms: 0, ad_impressions: 0, unique_viewers: 0, excluded_self_view: 0, excluded_duplicate_viewer: 0, excluded_duplicate_ip: 0 },
  )
}
