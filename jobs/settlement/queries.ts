import { z } from 'zod'
import type { ClickHouseSettings } from '@clickhouse/client'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { safeNumber } from '../../lib/money.ts'
import { addDays, daysBetween, parseDay, type Day } from './calendar.ts'
import { SettlementError } from './errors.ts'
import type { SettledDay } from './runs.ts'

/**
 * The read side of settlement, for the analytics API: totals per creator, per video and
 * per ad, by day, ISO week (Monday), month and year. Every figure is a sum of the visible
 * day lines (each day's latest committed run), so the grains reconcile exactly.
 * A period covers only the days of [from, to] inside it; periods without lines are left out.
 * A period is `final` when none of its days inside [from, to] can change any more.
 */

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

/** The period of a day per grain: a fixed whitelist, the only SQL chosen by the caller. */
const PERIOD_SQL: Record<SettlementGrain, string> = {
  day: 'day',
  week: 'toMonday(day)',
  month: 'toStartOfMonth(day)',
  year: 'toStartOfYear(day)',
}

const MAX_RANGE_DAYS = 366 * 20

/** What a read's SQL starts with and selects as `last_final`: from settlement_days in the statement, or bound from a snapshot. */
type Read = { where: string; params: Record<string, unknown>; period: string; head: string; lastFinal: string; settings?: ClickHouseSettings }

function checkQuery(q: SettlementQuery, visible?: VisibleRuns): Read {
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
function periodOf(day: Day, grain: SettlementGrain): Day {
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
const VISIBLE = `WITH (SELECT tuple(groupArrayIf(run_id, day >= {from:Date} AND day <= {to:Date}), toString(maxIf(day, status = 'final')), countIf(status = 'final') > 0)
  FROM settlement_days) AS visible`
/** Columns of every read, naming the last final day ('' when none). */
const LAST_FINAL = "if(any(visible.3), any(visible.2), '') AS last_final"
/** The same column in a read without GROUP BY. */
const LAST_FINAL_ROW = "if(visible.3, visible.2, '') AS last_final"

/**
 * Status of every period of [from, to]. Final days run without a gap from the first settled
 * day, and the days before it never change either, so a period is final exactly when its
 * last day inside the range is on or before the last final day.
 */
function periodStatuses(q: SettlementQuery, lastFinal: string): Map<Day, SettlementStatus> {
  const out = new Map<Day, SettlementStatus>()
  for (const day of daysBetween(q.from, q.to)) out.set(periodOf(day, q.grain), lastFinal !== '' && day <= lastFinal ? 'final' : 'provisional')
  return out
}

const u64 = z.union([z.string(), z.number()]).transform(safeNumber)
const amounts = { views: u64, video_revenue_krw: u64, ad_impressions: u64, ad_revenue_krw: u64 }

/**
 * A listing's GROUP BY takes in every key after the page's cursor, whatever the page's limit:
 * past this many bytes it spills to disk instead of holding them all. A platform's per-video
 * listing of the 100M-event day (4.46M keys), a page of 1,000 rows: the server's peak RSS
 * 1,877 MiB and 2.3–2.5 s a page without it, 626 MiB and 4.3–4.7 s with 64 MiB.
 */
const LISTING_SETTINGS = { max_bytes_before_external_group_by: String(128 * 2 ** 20) }

async function select<T extends z.ZodType>(ch: ClickHouseClient, query: string, params: Record<string, unknown>, schema: T, settings?: ClickHouseSettings): Promise<z.infer<T>[]> {
  const rs = await ch.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: settings })
  return (await rs.json()).map((r) => schema.parse(r))
}

/** Rows of a read (its `head`, and `lastFinal` among its columns) with the status of each row's period. */
async function selectWithStatus<T extends z.ZodObject<{ period: z.ZodString }>>(
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
function linesUnion(period: string, where: string): string {
  return `
    SELECT ${period} AS period, creator_id, video_id, views, revenue_krw AS video_krw, toUInt64(0) AS impressions, toUInt64(0) AS ad_krw
    FROM settlement_video_lines WHERE ${where}
    UNION ALL
    SELECT ${period} AS period, creator_id, video_id, toUInt64(0), toUInt64(0), impressions, revenue_krw
    FROM settlement_ad_lines WHERE ${where}`
}

/**
 * A page of a listing ordered by (period, ...keys): the rows after `q.after` (a condition on
 * each row source, so the engine groups only what is left) and at most `q.limit` + 1 of them.
 * Without it a platform's per-video day of the 100M-event day (4.46M rows) took the API
 * server to 6.1 GiB.
 */
function pageOf(q: SettlementQuery, period: string, keys: readonly string[]): { where: string; limit: string; params: Record<string, unknown>; settings?: ClickHouseSettings } {
  const params: Record<string, unknown> = {}
  let where = ''
  if (q.after !== undefined) {
    if (q.after.length !== keys.length + 1) throw new SettlementError('BAD_CURSOR', `a cursor of this listing holds ${keys.length + 1} values, not ${q.after.length}`)
    params.after_period = parseDay(q.after[0]!)
    keys.forEach((_, i) => (params[`after_${i}`] = q.after![i + 1]))
    where = ` AND (${period}, ${keys.join(', ')}) > ({after_period:Date}, ${keys.map((_, i) => `{after_${i}:String}`).join(', ')})`
  }
  if (q.limit !== undefined) params.limit_plus = q.limit + 1
  // A page groups every key after its cursor: spilled to disk past LISTING_SETTINGS' bytes.
  return q.limit === undefined ? { where, limit: '', params } : { where, limit: ' LIMIT {limit_plus:UInt64}', params, settings: LISTING_SETTINGS }
}

/** A row with its total (video and ad revenue) before its status, the order answers show. */
function withTotal<R extends { video_revenue_krw: number; ad_revenue_krw: number; status: SettlementStatus }>({ status, ...r }: R) {
  return { ...r, total_krw: r.video_revenue_krw + r.ad_revenue_krw, status }
}

/**
 * Settlement totals per period.
 *
 * @example
 * await settlementTotals(ch, { creatorId: 'u1', grain: 'month', from: '2024-01-01', to: '2024-12-31' })
 */
export async function settlementTotals(ch: ClickHouseClient, q: SettlementQuery, visible?: VisibleRuns): Promise<SettlementTotalsRow[]> {
  const read = checkQuery(q, visible)
  const { where, period } = read
  const sums = await selectWithStatus(
    ch,
    q,
    read,
    `SELECT period, sum(views) AS views, sum(video_krw) AS video_revenue_krw, sum(impressions) AS ad_impressions, sum(ad_krw) AS ad_revenue_krw, ${read.lastFinal}
     FROM (${linesUnion(period, where)}) GROUP BY period ORDER BY period`,
    z.object({ period: z.string(), ...amounts }),
  )
  return sums.map(withTotal)
}

/**
 * The key columns after the period of a page of the per-video listing, in its order: by day,
 * a page is read in the lines' own order (see videoDayPage), creator then video; over longer
 * periods by video.
 */
export const videoListingKeys = (grain: SettlementGrain) => (grain === 'day' ? (['creator_id', 'video_id'] as const) : (['video_id'] as const))

/**
 * A page of the per-video listing by day, read in the order of settlement_video_lines (day,
 * run, creator, video: one visible run a day, so the run adds nothing to the order) from the
 * page's cursor on, with no GROUP BY: the engine reads the page's rows and stops. The page's
 * ad amounts come from the ad lines between its first and last key. A platform's page of
 * 10,000 videos of the 100M-event day: 36–68 ms and 22–67 ms for its ads, where grouping every
 * key after the cursor took 4.7–4.9 s (test/bench/HISTORY.md, thirty-sixth session).
 */
async function videoDayPage(ch: ClickHouseClient, q: SettlementQuery & { limit: number }, visible?: VisibleRuns): Promise<SettlementVideoRow[]> {
  const checked = checkQuery(q, visible)
  const page = pageOf(q, 'day', videoListingKeys('day'))
  const read = { ...checked, params: { ...checked.params, ...page.params }, lastFinal: visible ? checked.lastFinal : LAST_FINAL_ROW }
  const lines = await selectWithStatus(
    ch,
    q,
    read,
    `SELECT day AS period, video_id, creator_id, views, revenue_krw AS video_revenue_krw, ${read.lastFinal}
     FROM settlement_video_lines WHERE ${read.where}${page.where}
     ORDER BY day, run_id, creator_id, video_id${page.limit}`,
    z.object({ period: z.string(), video_id: z.string(), creator_id: z.string(), views: u64, video_revenue_krw: u64 }),
  )
  if (lines.length === 0) return []
  const first = lines[0]!
  const last = lines.at(-1)!
  const ads = await select(
    ch,
    `${read.head}
     SELECT toString(day) AS period, creator_id, video_id, sum(impressions) AS ad_impressions, sum(revenue_krw) AS ad_revenue_krw
     FROM settlement_ad_lines WHERE ${checked.where}
       AND (day, creator_id, video_id) >= ({first_day:Date}, {first_creator:String}, {first_video:String})
       AND (day, creator_id, video_id) <= ({last_day:Date}, {last_creator:String}, {last_video:String})
     GROUP BY day, creator_id, video_id`,
    { ...checked.params, first_day: first.period, first_creator: first.creator_id, first_video: first.video_id, last_day: last.period, last_creator: last.creator_id, last_video: last.video_id },
    z.object({ period: z.string(), creator_id: z.string(), video_id: z.string(), ad_impressions: u64, ad_revenue_krw: u64 }),
  )
  const adsOf = new Map(ads.map((a) => [`${a.period}\n${a.creator_id}\n${a.video_id}`, a]))
  return lines.map(({ status, ...l }) => {
    const a = adsOf.get(`${l.period}\n${l.creator_id}\n${l.video_id}`)
    return withTotal({ ...l, ad_impressions: a?.ad_impressions ?? 0, ad_revenue_krw: a?.ad_revenue_krw ?? 0, status })
  })
}

/** Settlement per period and video (a page of it with `limit`: by day, see videoDayPage). */
export async function settlementByVideo(ch: ClickHouseClient, q: SettlementQuery, visible?: VisibleRuns): Promise<SettlementVideoRow[]> {
  if (q.grain === 'day' && q.limit !== undefined) return videoDayPage(ch, { ...q, limit: q.limit }, visible)
  const checked = checkQuery(q, visible)
  const page = pageOf(q, checked.period, videoListingKeys(q.grain))
  const read = { ...checked, params: { ...checked.params, ...page.params }, settings: page.settings }
  const sums = await selectWithStatus(
    ch,
    q,
    read,
    `SELECT period, video_id, any(creator_id) AS creator_id, sum(views) AS views, sum(video_krw) AS video_revenue_krw,
       sum(impressions) AS ad_impressions, sum(ad_krw) AS ad_revenue_krw, ${read.lastFinal}
     FROM (${linesUnion(read.period, read.where + page.where)}) GROUP BY period, video_id ORDER BY period, video_id${page.limit}`,
    z.object({ period: z.string(), video_id: z.string(), creator_id: z.string(), ...amounts }),
  )
  return sums.map(withTotal)
}

/** Settlement per period, video and ad. */
export async function settlementByAd(ch: ClickHouseClient, q: SettlementQuery, visible?: VisibleRuns): Promise<SettlementAdRow[]> {
  const checked = checkQuery(q, visible)
  const page = pageOf(q, checked.period, ['video_id', 'ad_id'])
  const read = { ...checked, params: { ...checked.params, ...page.params }, settings: page.settings }
  return selectWithStatus(
    ch,
    q,
    read,
    `SELECT ${read.period} AS period, video_id, ad_id, sum(impressions) AS impressions, sum(revenue_krw) AS ad_revenue_krw, ${read.lastFinal}
     FROM settlement_ad_lines WHERE ${read.where}${page.where}
     GROUP BY period, video_id, ad_id ORDER BY period, video_id, ad_id${page.limit}`,
    z.object({ period: z.string(), video_id: z.string(), ad_id: z.string(), impressions: u64, ad_revenue_krw: u64 }),
  )
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

/** Settled days of a range with their status and visible run (for admin screens). */
export async function settlementDayStatuses(ch: ClickHouseClient, range: { from: string; to: string }): Promise<Array<{ day: string; status: SettlementStatus; run_id: number }>> {
  const from = parseDay(range.from)
  const to = parseDay(range.to)
  return select(
    ch,
    'SELECT day, status, run_id FROM settlement_days WHERE day >= {from:Date} AND day <= {to:Date} ORDER BY day',
    { from, to },
    z.object({ day: z.string(), status: z.enum(['provisional', 'final']), run_id: u64 }),
  )
}
