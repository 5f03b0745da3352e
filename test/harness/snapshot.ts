import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { rows } from './engines.ts'

const num = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) && k !== 'period' ? Number(v) : v]))

/** Everything the system derived for one video: raw rows by outcome and every aggregate table. */
export async function videoSnapshot(ch: ClickHouseClient, videoId: string) {
  const p = { v: videoId }
  const stats = (table: string, col: string) =>
    rows(
      ch,
      `SELECT toString(${col}) AS period, sum(views) AS views, sum(watch_ms) AS watch_ms, sum(ad_impressions) AS ad_impressions,
              sum(excluded_self_view) AS self_view, sum(excluded_duplicate_viewer) AS duplicate_viewer,
              sum(excluded_duplicate_ip) AS duplicate_ip, uniqExactMerge(unique_viewers) AS unique_viewers
       FROM ${table} WHERE video_id = {v:String} GROUP BY ${col} ORDER BY ${col}`,
      p,
    ).then((r) => r.map(num))
  const ads = (table: string, col: string) =>
    rows(ch, `SELECT toString(${col}) AS period, ad_id, sum(impressions) AS impressions FROM ${table} WHERE video_id = {v:String} GROUP BY ${col}, ad_id ORDER BY ${col}, ad_id`, p).then((r) =>
      r.map(num),
    )
  return {
    raw: await rows(ch, `SELECT outcome, reason, type, count() AS n FROM raw_events WHERE video_id = {v:String} GROUP BY outcome, reason, type ORDER BY outcome, reason, type`, p).then((r) => r.map(num)),
    rawIds: await rows(ch, `SELECT count() AS n, uniqExact(event_id) AS ids FROM raw_events WHERE video_id = {v:String}`, p).then((r) => r.map(num)),
    day: await stats('video_stats_per_day', 'day'),
    week: await stats('video_stats_per_week', 'week'),
    month: await stats('video_stats_per_month', 'month'),
    adDay: await ads('ad_impressions_per_day', 'day'),
    adWeek: await ads('ad_impressions_per_week', 'week'),
    adMonth: await ads('ad_impressions_per_month', 'month'),
    resume: await rows(ch, `SELECT viewer_id, argMax(position_ms, updated_at) AS position_ms FROM resume_positions WHERE video_id = {v:String} GROUP BY viewer_id ORDER BY viewer_id`, p).then((r) =>
      r.map(num),
    ),
  }
}

/** Calendar date of an instant in a time zone, as YYYY-MM-DD. */
export function dateIn(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms))
}

/** Videos whose id starts with this fail every insert into raw_events inside withFailingView. */
export const FAILING_VIDEO_PREFIX = 'crash-'

/**
 * Runs `fn` with a test-only materialized view on raw_events that throws for the videos of
 * FAILING_VIDEO_PREFIX: raw_events and the views before it take the block, the insert fails,
 * as when the process dies in the middle of it. The view is dropped after, whatever `fn` did.
 */
export async function withFailingView<T>(ch: ClickHouseClient, fn: () => Promise<T>): Promise<T> {
  await ch.command({ query: 'CREATE TABLE crash_sink (x UInt8) ENGINE = Null' })
  await ch.command({ query: `CREATE MATERIALIZED VIEW crash_mv TO crash_sink AS SELECT throwIf(video_id LIKE '${FAILING_VIDEO_PREFIX}%', 'simulated crash') AS x FROM raw_events` })
  try {
    return await fn()
  } finally {
    await ch.command({ query: 'DROP VIEW crash_mv' })
    await ch.command({ query: 'DROP TABLE crash_sink' })
  }
}
