import { z } from 'zod'
import type { ClickHouseSettings } from '@clickhouse/client'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { safeNumber } from '../../lib/money.ts'
import { addDays, daysBetween, parseDay, type Day } from './calendar.ts'
import { SettlementError } from './errors.ts'
import type { SettledDay } from './runs.ts'

/** What the settlement reads share: their types, the checked query, the visible runs and the SQL pieces (see queries.ts and pages.ts). */

export type SettlementGrain = 'day' | 'week' | 'month' | 'year'
export type SettlementStatus = 'provisional' | 'final'
export type SettlementQuery = {
  creatorId?: string
  videoId?: string
  grain: SettlementGrain
  from: string
  to: string
  /** Listings (per video, per ad): at most this many rows and one more, which tells that a next page follows. */
  limit?: number
  /** Listings: only the rows after this key in the listing's order (period as YYYY-MM-DD, video id, and ad id per ad). */
  after?: readonly string[]
}
/**
 * Every settled day's visible run (its latest committed run) and the last final day ('' when
 * none), read at once (see visibleRuns): a read given them binds the runs of its range instead
 * of evaluating settlement_days itself.
 */
export type VisibleRuns = { runs: ReadonlyMap<Day, number>; lastFinal: string }

export type SettlementTotalsRow = {
  /** First day of the period, YYYY-MM-DD */
  period: string
  views: number
  video_revenue_krw: number
  ad_impressions: number
  ad_revenue_krw: number
  total_krw: number
  status: SettlementStatus
}
export type SettlementVideoRow = SettlementTotalsRow & { video_id: string; creator_id: string }
export type SettlementAdRow = { period: string; video_id: string; ad_id: string; impressions: number; ad_revenue_krw: number; status: SettlementStatus }

/** The key columns after the period of the per-video listing, in its order at every grain: creator, then video. */
export const VIDEO_LISTING_KEYS = ['creator_id', 'video_id'] as const
/** The key columns after the period of the per-ad listing, in its order: video, then ad. */
export const AD_LISTING_KEYS = ['video_id', 'ad_id'] as const

/** The period of a day per grain: a fixed whitelist, the only SQL chosen by the caller. */
export const PERIOD_SQL: Record<SettlementGrain, string> = {
  day: 'day',
  week: 'toMonday(day)',
  month: 'toStartOfMonth(day)',
  year: 'toStartOfYear(day)',
}

const MAX_RANGE_DAYS = 366 * 20

/** What a read's SQL starts with and selects as `last_final`: from settlement_days in the statement, or bound from a snapshot. */
export type Read = { where: string; params: Record<string, unknown>; period: string; head: string; lastFinal: string; settings?: ClickHouseSettings }

export function checkQuery(q: SettlementQuery, visible?: VisibleRuns): Read {
  if (!(q.grain in PERIOD_SQL)) throw new SettlementError('BAD_DATE', `grain must be day, week, month or year, not ${JSON.stringify(q.grain)}`)
  const from = parseDay(q.from)
  const to = parseDay(q.to)
  if (from > to) throw new SettlementError('BAD_DATE', `from ${from} is after to ${to}`)
  if (to > addDays(from, MAX_RANGE_DAYS)) throw new SettlementError('BAD_DATE', 'a range covers at most 20 years')
  const params: Record<string, unknown> = { from, to }
  let where = `day >= {from:Date} AND day <= {to:Date} AND has(${visible ? '{runs:Array(UInt64)}' : 'visible.1'}, run_id)`
  if (visible) {
    params.runs = [...visible.runs].filter(([day]) => day >= from && day <= to).map(([, run]) => run)
    params.last_final = visible.lastFinal
  }
  if (q.creatorId !== undefined) {
    where += ' AND creator_id = {creator_id:String}'
    params.creator_id = q.creatorId
  }
  if (q.videoId !== undefined) {
    where += ' AND video_id = {video_id:String}'
    params.video_id = q.videoId
  }
  return {
    where,
    params,
    period: PERIOD_SQL[q.grain],
    head: visible ? '' : VISIBLE,
    lastFinal: visible ? '{last_final:String} AS last_final' : LAST_FINAL,
  }
}

/** The first day of the period `day` falls in, as the SQL of PERIOD_SQL computes it. */
export function periodOf(day: Day, grain: SettlementGrain): Day {
  if (grain === 'day') return day
  if (grain === 'month') return `${day.slice(0, 7)}-01`
  if (grain === 'year') return `${day.slice(0, 4)}-01-01`
  const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7
  return addDays(day, -weekday)
}

/**
 * What a read without a snapshot (VisibleRuns) starts with, evaluated once per query: the
 * runs visible in [from, to] (each settled day's latest committed run), the last final day
 * and whether there is one. A query reads the lines of those runs and the status from the
 * same snapshot of settlement_days, in one statement (settlement_days costs about 5 ms to
 * evaluate, as a scalar subquery 6-7 ms of the statement's analysis in chDB: a creator's
 * totals of five days took 20.7 ms against 13.5 with the runs bound, 6 December).
 */
export const VISIBLE = `WITH (SELECT tuple(groupArrayIf(run_id, day >= {from:Date} AND day <= {to:Date}), toString(maxIf(day, status = 'final')), countIf(status = 'final') > 0)
  FROM settlement_days) AS visible`
/** Columns of every read, naming the last final day ('' when none). */
export const LAST_FINAL = "if(any(visible.3), any(visible.2), '') AS last_final"
/** The same column in a read without GROUP BY. */
export const LAST_FINAL_ROW = "if(visible.3, visible.2, '') AS last_final"

/**
 * Status of every period of [from, to]. Final days run without a gap from the first settled
 * day, and the days before it never change either, so a period is final exactly when its
 * last day inside the range is on or before the last final day.
 */
export function periodStatuses(q: SettlementQuery, lastFinal: string): Map<Day, SettlementStatus> {
  const out = new Map<Day, SettlementStatus>()
  for (const day of daysBetween(q.from, q.to)) out.set(periodOf(day, q.grain), lastFinal !== '' && day <= lastFinal ? 'final' : 'provisional')
  return out
}

export const u64 = z.union([z.string(), z.number()]).transform(safeNumber)
export const amounts = { views: u64, video_revenue_krw: u64, ad_impressions: u64, ad_revenue_krw: u64 }

/**
 * A listing's GROUP BY takes in every key after the page's cursor, whatever the page's limit:
 * past this many bytes it spills to disk instead of holding them all. A platform's per-video
 * listing of the 100M-event day (4.46M keys), a page of 1,000 rows: the server's peak RSS
 * 1,877 MiB and 2.3–2.5 s a page without it, 626 MiB and 4.3–4.7 s with 64 MiB.
 */
export const LISTING_SETTINGS = { max_bytes_before_external_group_by: String(128 * 2 ** 20) }

export async function select<T extends z.ZodType>(ch: ClickHouseClient, query: string, params: Record<string, unknown>, schema: T, settings?: ClickHouseSettings): Promise<z.infer<T>[]> {
  const rs = await ch.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: settings })
  return (await rs.json()).map((r) => schema.parse(r))
}

/** Rows of a read (its `head`, and `lastFinal` among its columns) with the status of each row's period. */
export async function selectWithStatus<T extends z.ZodObject<{ period: z.ZodString }>>(
  ch: ClickHouseClient,
  q: SettlementQuery,
  read: Read,
  query: string,
  schema: T,
): Promise<(z.infer<T> & { status: SettlementStatus })[]> {
  const rows = await select(ch, `${read.head}\n${query}`, read.params, schema.extend({ last_final: z.string() }), read.settings)
  if (rows.length === 0) return []
  const statuses = periodStatuses(q, rows[0]!.last_final)
  return rows.map(({ last_final: _, ...r }) => ({ ...(r as z.infer<T>), status: statuses.get(r.period as Day) ?? 'provisional' }))
}

/** Both kinds of line as one row source: video lines carry views and video revenue, ad lines impressions and ad revenue. */
export function linesUnion(period: string, where: string): string {
  return `
    SELECT ${period} AS period, creator_id, video_id, views, revenue_krw AS video_krw, toUInt64(0) AS impressions, toUInt64(0) AS ad_krw
    FROM settlement_video_lines WHERE ${where}
    UNION ALL
    SELECT ${period} AS period, creator_id, video_id, toUInt64(0), toUInt64(0), impressions, revenue_krw
    FROM settlement_ad_lines WHERE ${where}`
}

/** A listing's cursor (`q.after`): its period and its `keys` key values, checked; undefined on the first page. */
export function cursorOf(q: SettlementQuery, keys: number): { period: Day; key: readonly string[] } | undefined {
  if (q.after === undefined) return undefined
  if (q.after.length !== keys + 1) throw new SettlementError('BAD_CURSOR', `a cursor of this listing holds ${keys + 1} values, not ${q.after.length}`)
  return { period: parseDay(q.after[0]!), key: q.after.slice(1) }
}

/**
 * A page of a listing ordered by (period, ...keys): the rows after `q.after` (a condition on
 * each row source, so the engine groups only what is left) and at most `q.limit` + 1 of them.
 * Without it a platform's per-video day of the 100M-event day (4.46M rows) took the API
 * server to 6.1 GiB.
 */
export function pageOf(q: SettlementQuery, period: string, keys: readonly string[]): { where: string; limit: string; params: Record<string, unknown>; settings?: ClickHouseSettings } {
  const params: Record<string, unknown> = {}
  let where = ''
  const cursor = cursorOf(q, keys.length)
  if (cursor !== undefined) {
    params.after_period = cursor.period
    keys.forEach((_, i) => (params[`after_${i}`] = cursor.key[i]))
    where = ` AND (${period}, ${keys.join(', ')}) > ({after_period:Date}, ${keys.map((_, i) => `{after_${i}:String}`).join(', ')})`
  }
  if (q.limit !== undefined) params.limit_plus = q.limit + 1
  // A page groups every key after its cursor: spilled to disk past LISTING_SETTINGS' bytes.
  return q.limit === undefined ? { where, limit: '', params } : { where, limit: ' LIMIT {limit_plus:UInt64}', params, settings: LISTING_SETTINGS }
}

/** A row with its total (video and ad revenue) before its status, the order answers show. */
export function withTotal<R extends { video_revenue_krw: number; ad_revenue_krw: number; status: SettlementStatus }>({ status, ...r }: R) {
  return { ...r, total_krw: r.video_revenue_krw + r.ad_revenue_krw, status }
}

/**
 * Every settled day's visible run and the last final day, in one read of settlement_days:
 * given to the reads above (a snapshot a process keeps until a settlement run commits, see
 * analytics/settlements/cache.ts), their statements bind the runs instead of evaluating it.
 */
export async function visibleRuns(ch: ClickHouseClient): Promise<VisibleRuns> {
  const days = await select(ch, 'SELECT toString(day) AS day, run_id, status FROM settlement_days', {}, z.object({ day: z.string(), run_id: u64, status: z.string() }))
  return visibleRunsOf(days.map((d) => ({ day: d.day as Day, run_id: d.run_id, status: d.status })))
}

/** The same from settled days already at hand (the settlement job's, kept as its days commit under the lock). */
export function visibleRunsOf(settled: ReadonlyArray<Pick<SettledDay, 'day' | 'run_id'> & { status: string }>): VisibleRuns {
  let lastFinal = ''
  for (const d of settled) if (d.status === 'final' && d.day > lastFinal) lastFinal = d.day
  return { runs: new Map(settled.map((d) => [d.day, d.run_id])), lastFinal }
}

