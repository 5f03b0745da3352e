import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { periodStart } from '../http/dates.ts'

export type TopGrain = 'day' | 'week' | 'month'
export type TopMetric = 'views' | 'watch_time'

const SOURCES: Record<TopGrain, { table: string; period: string }> = {
  day: { table: 'video_stats_per_day', period: 'day' },
  week: { table: 'video_stats_per_week', period: 'week' },
  month: { table: 'video_stats_per_month', period: 'month' },
}

const topRow = z.object({ video_id: z.string(), creator_id: z.string(), title: z.string(), views: z.coerce.number(), watch_ms: z.coerce.number() })
/** A ranked row as answered (and as kept in the cache). */
export const rankedTopRow = z.object({ rank: z.number().int().min(1), ...topRow.shape })
export type TopRow = z.infer<typeof rankedTopRow>
export type TopQuery = { creatorId?: string; metric: TopMetric; grain: TopGrain; date: string; limit: number }
/** The longest top a request may ask for. */
export const MAX_TOP_LIMIT = 100

/**
 * The top videos of the period holding `date` by views or watch time, of one
 * creator or (creatorId omitted) of the platform. Ties are broken by video id.
 */
export async function topVideos(ch: ClickHouseClient, q: TopQuery): Promise<{ period: string; rows: TopRow[] }> {
  const { table, period } = SOURCES[q.grain]
  const start = periodStart(q.grain, q.date)
  const rs = await ch.query({
    query: `SELECT s.video_id AS video_id, any(s.creator_id) AS creator_id, any(v.title) AS title, sum(s.views) AS views, sum(s.watch_ms) AS watch_ms
            FROM ${table} AS s
            LEFT JOIN (SELECT video_id, title FROM videos FINAL) AS v ON v.video_id = s.video_id
            WHERE s.${period} = {period:Date} AND ({creator:String} = '' OR s.creator_id = {creator:String})
            GROUP BY video_id
            HAVING views > 0 OR watch_ms > 0
            ORDER BY if({metric:String} = 'views', views, watch_ms) DESC, video_id
            LIMIT {limit:UInt32}`,
    query_params: { period: start, creator: q.creatorId ?? '', metric: q.metric, limit: q.limit },
    format: 'JSONEachRow',
  })
  return { period: start, rows: (await rs.json()).map((r, i) => ({ rank: i + 1, ...topRow.parse(r) })) }
}
