import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { periodStart, periodsBetween, type Grain } from '../http/dates.ts'

/**
 * Where each grain is read from: the aggregate table and its period column. A year
 * is the sum of its months (unique viewers: the month states merged). Identifiers
 * only, from this closed list; every value is a bound parameter.
 */
const SOURCES: Record<Grain, { table: string; period: string; filter: string }> = {
  day: { table: 'video_stats_per_day', period: 'day', filter: 'day' },
  week: { table: 'video_stats_per_week', period: 'week', filter: 'week' },
  month: { table: 'video_stats_per_month', period: 'month', filter: 'month' },
  year: { table: 'video_stats_per_month', period: 'toStartOfYear(month)', filter: 'month' },
}

export const statsRow = z.object({
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

const videoStatsRow = statsRow.extend({ creator_id: z.string(), video_id: z.string() })

export type StatsQuery = { videoId: string; creatorId: string; grain: Grain; from: string; to: string }

/**
 * One video's figures per period over [from, to], every period present (zeros where
 * nothing happened). Periods are whole: the week holding `from` counts all its days.
 * A year counts its months up to the one holding `to`.
 */
export async function videoStats(ch: ClickHouseClient, q: StatsQuery): Promise<StatsRow[]> {
  const [rows] = await videoStatsMany(ch, [q])
  return rows!
}

/**
 * The answers of several `videoStats` queries of one grain in one query: chDB runs one
 * query at a time, so one query over many videos beats many queued queries (it pays the
 * fixed cost of a query once; what it reads still grows with the videos).
 * Queries for years must share the month of `to`, which cuts their last year.
 */
async function statsOfOneGrain(ch: ClickHouseClient, grain: Grain, qs: StatsQuery[]): Promise<StatsRow[][]> {
  const { table, period, filter } = SOURCES[grain]
  const from = qs.map((q) => periodStart(grain, q.from)).reduce((a, b) => (a < b ? a : b))
  const to = qs.map((q) => q.to).reduce((a, b) => (a > b ? a : b))
  const rs = await ch.query({
    query: `SELECT creator_id, video_id, toString(${period}) AS period,
                   sum(views) AS views, sum(watch_ms) AS watch_ms, sum(ad_impressions) AS ad_impressions,
                   uniqExactMerge(unique_viewers) AS unique_viewers,
                   sum(excluded_self_view) AS excluded_self_view,
                   sum(excluded_duplicate_viewer) AS excluded_duplicate_viewer,
                   sum(excluded_duplicate_ip) AS excluded_duplicate_ip
            FROM ${table}
            WHERE creator_id IN {creators:Array(String)} AND video_id IN {videos:Array(String)} AND ${filter} BETWEEN {from:Date} AND {to:Date}
            GROUP BY creator_id, video_id, period`,
    // creator_id narrows the primary index (period, creator_id, video_id) to the creators' rows.
    query_params: { creators: [...new Set(qs.map((q) => q.creatorId))], videos: [...new Set(qs.map((q) => q.videoId))], from, to },
    format: 'JSONEachRow',
  })
  const found = new Map<string, StatsRow>()
  for (const r of await rs.json()) {
    const { creator_id, video_id, ...row } = videoStatsRow.parse(r)
    found.set(JSON.stringify([creator_id, video_id, row.period]), row)
  }
  return qs.map((q) =>
    periodsBetween(grain, q.from, q.to).map(
      (p) =>
        found.get(JSON.stringify([q.creatorId, q.videoId, p])) ?? { period: p, views: 0, watch_ms: 0, ad_impressions: 0, unique_viewers: 0, excluded_self_view: 0, excluded_duplicate_viewer: 0, excluded_duplicate_ip: 0 },
    ),
  )
}

/**
 * The answers of many `videoStats` queries, in order, with one query per grain (per
 * month of `to` for years): what a batch of concurrent requests runs.
 */
export async function videoStatsMany(ch: ClickHouseClient, qs: StatsQuery[]): Promise<StatsRow[][]> {
  const groups = new Map<string, number[]>()
  qs.forEach((q, i) => {
    const group = q.grain === 'year' ? `year ${periodStart('month', q.to)}` : q.grain
    const members = groups.get(group) ?? []
    members.push(i)
    groups.set(group, members)
  })
  const out: StatsRow[][] = new Array(qs.length)
  for (const indexes of groups.values()) {
    const answers = await statsOfOneGrain(ch, qs[indexes[0]!]!.grain, indexes.map((i) => qs[i]!))
    indexes.forEach((i, k) => (out[i] = answers[k]!))
  }
  return out
}
