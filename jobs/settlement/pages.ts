import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import type { Day } from './calendar.ts'
import {
  amounts,
  checkQuery,
  cursorOf,
  LAST_FINAL_ROW,
  linesUnion,
  LISTING_SETTINGS,
  pageOf,
  periodOf,
  select,
  selectWithStatus,
  u64,
  AD_LISTING_KEYS,
  VIDEO_LISTING_KEYS,
  withTotal,
  type SettlementAdRow,
  type SettlementQuery,
  type SettlementVideoRow,
  type VisibleRuns,
} from './read.ts'

/**
 * The listings' pages over many rows: the per-video listing, in the order of period, creator
 * and video, as the platform's (every video of every day) asks for it. Pages of one creator's
 * or one video's lines group what is after their cursor (read.ts, pageOf): those are few.
 */

/**
 * A page of the per-video listing by day, read in the order of settlement_video_lines (day,
 * run, creator, video: one visible run a day, so the run adds nothing to the order) from the
 * page's cursor on, with no GROUP BY: the engine reads the page's rows and stops. The page's
 * ad amounts come from the ad lines between its first and last key. A platform's page of
 * 10,000 videos of the 100M-event day: 36–68 ms and 22–67 ms for its ads, where grouping every
 * key after the cursor took 4.7–4.9 s (test/bench/HISTORY.md, thirty-sixth session).
 */
export async function videoDayPage(ch: ClickHouseClient, q: SettlementQuery & { limit: number }, visible?: VisibleRuns): Promise<SettlementVideoRow[]> {
  const checked = checkQuery(q, visible)
  const page = pageOf(q, 'day', VIDEO_LISTING_KEYS)
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

/** Days whose cuts one statement reads at most, but for a period longer than that (a year's 366 at once). */
const CUT_WINDOW_DAYS = 62

type Period = { period: Day; days: [Day, number][] }
type Key = readonly [string, string]
const before = (a: Key, b: Key) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])
type Read = ReturnType<typeof checkQuery>

/**
 * A listing read a window of days at a time (periodPage): the table whose lines give each day's
 * cut, its two key columns after the period (the lines' own order within a day and run, after
 * the creator when that is fixed), and its page: the rows of the lines `where` selects, grouped
 * by period and keys, in that order, at most `{want:UInt64}`. Keys and tables are these constants.
 */
type Listing<R> = {
  table: 'settlement_video_lines' | 'settlement_ad_lines'
  keys: readonly [string, string]
  page(ch: ClickHouseClient, q: SettlementQuery, read: Read, where: string): Promise<R[]>
}

const VIDEO_LISTING: Listing<SettlementVideoRow> = {
  table: 'settlement_video_lines',
  keys: VIDEO_LISTING_KEYS,
  async page(ch, q, read, where) {
    const sums = await selectWithStatus(
      ch,
      q,
      read,
      `SELECT period, creator_id, video_id, sum(views) AS views, sum(video_krw) AS video_revenue_krw,
         sum(impressions) AS ad_impressions, sum(ad_krw) AS ad_revenue_krw, ${read.lastFinal}
       FROM (${linesUnion(read.period, where)}) GROUP BY period, creator_id, video_id ORDER BY period, creator_id, video_id LIMIT {want:UInt64}`,
      z.object({ period: z.string(), creator_id: z.string(), video_id: z.string(), ...amounts }),
    )
    return sums.map(withTotal)
  },
}

/** One creator's per-ad listing (its creator fixed: the ad lines' order within a day is video, ad). */
const AD_LISTING: Listing<SettlementAdRow> = {
  table: 'settlement_ad_lines',
  keys: AD_LISTING_KEYS,
  page: (ch, q, read, where) =>
    selectWithStatus(
      ch,
      q,
      read,
      `SELECT ${read.period} AS period, video_id, ad_id, sum(impressions) AS impressions, sum(revenue_krw) AS ad_revenue_krw, ${read.lastFinal}
       FROM settlement_ad_lines WHERE ${where}
       GROUP BY period, video_id, ad_id ORDER BY period, video_id, ad_id LIMIT {want:UInt64}`,
      z.object({ period: z.string(), video_id: z.string(), ad_id: z.string(), impressions: u64, ad_revenue_krw: u64 }),
    ),
}

/**
 * Lines one creator's listing of the range holds at least, for its pages to be read as the
 * platform's are (periodPage) rather than by grouping every key after the cursor: that took
 * about 0.6 µs a line (57–74 s for 107M), 0.6 s a page at this many.
 */
export const PERIOD_PAGE_LINES = 1_000_000

/** Whether one creator's lines of the range (video lines, or ad lines) are at least PERIOD_PAGE_LINES (counted by the primary key, day, run and creator). */
export async function manyLines(ch: ClickHouseClient, q: SettlementQuery, visible: VisibleRuns, least = PERIOD_PAGE_LINES, table: Listing<unknown>['table'] = 'settlement_video_lines'): Promise<boolean> {
  const checked = checkQuery(q, visible)
  const [row] = await select(ch, `SELECT count() >= {least:UInt64} AS many FROM ${table} WHERE ${checked.where}`, { ...checked.params, least }, z.object({ many: z.coerce.number() }))
  return row?.many === 1
}

/** A page of the per-video listing over weeks, months or years, the platform's or a creator's of many lines: see periodPage. */
export const videoPeriodPage = (ch: ClickHouseClient, q: SettlementQuery & { limit: number }, visible: VisibleRuns) => periodPage(ch, q, visible, VIDEO_LISTING)

/** A page of one creator's per-ad listing of many lines, at any grain: see periodPage. */
export function adPeriodPage(ch: ClickHouseClient, q: SettlementQuery & { limit: number; creatorId: string }, visible: VisibleRuns) {
  return periodPage(ch, q, visible, AD_LISTING)
}

/**
 * A page of a listing for the whole platform or one creator of many lines (manyLines).
 * Grouping every key after the cursor took ~5 s a page on one 4.46M-video day, and a month of
 * such days holds 134M lines. Instead, from the cursor's period on, a window of periods at a time:
 * 1. each visible day's cut (dayCuts): how many of its lines come after the cursor, up to the
 *    `want` rows the page still lacks, and the last of them, read in the lines' own order
 *    (day, run, creator, video[, ad]), where the engine stops after `want` lines;
 * 2. the lines of the window's periods up to the first one holding a day with `want` lines
 *    after the cursor, and in that one up to its smallest such cut, grouped by period and keys.
 *    That day alone holds `want` keys up to the cut (a key has one line a day), so the page is
 *    full, and at most `want` lines a day are grouped. Periods whose days all have fewer are
 *    grouped whole, as many as their largest days show are needed.
 */
async function periodPage<R>(ch: ClickHouseClient, q: SettlementQuery & { limit: number }, visible: VisibleRuns, listing: Listing<R>): Promise<R[]> {
  const checked = checkQuery(q, visible)
  const from = checked.params.from as Day
  const to = checked.params.to as Day
  let cursor = cursorOf(q, 2) as { period: Day; key: Key } | undefined
  const periods: Period[] = []
  for (const [day, run] of [...visible.runs].filter(([d]) => d >= from && d <= to).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const period = periodOf(day, q.grain)
    if (periods.at(-1)?.period !== period) periods.push({ period, days: [] })
    periods.at(-1)!.days.push([day, run])
  }
  const need = q.limit + 1
  const out: R[] = []
  let i = cursor === undefined ? 0 : periods.findIndex((p) => p.period >= cursor!.period)
  // The first window is one period (a platform's period mostly fills a page); each next one twice the days of the last.
  let windowDays = 1
  while (i >= 0 && i < periods.length && out.length < need) {
    const after = cursor?.period === periods[i]!.period ? cursor.key : undefined
    let j = i + 1
    let days = periods[i]!.days.length
    for (; j < periods.length && days + periods[j]!.days.length <= windowDays; j++) days += periods[j]!.days.length
    windowDays = Math.min(CUT_WINDOW_DAYS, 2 * days)
    const want = need - out.length
    const cuts = await dayCuts(ch, listing, periods.slice(i, j), after, want, q.creatorId)
    // The periods to group: up to the first with a day cut, or until their largest days hold `want` keys.
    let k = i
    let keys = 0
    let bound: Key | undefined
    while (k < j && bound === undefined && keys < want) {
      for (const [day] of periods[k]!.days) {
        const cut = cuts.get(day)
        if (cut && cut.lines >= want && (bound === undefined || before(cut.last, bound))) bound = cut.last
      }
      keys += Math.max(0, ...periods[k]!.days.map(([day]) => cuts.get(day)?.lines ?? 0))
      k++
    }
    out.push(...(await groupPeriods(ch, q, checked, listing, periods.slice(i, k), after, bound, want)))
    // Past a bound, on from it (the page is full unless a key had two lines a day); else from the next period.
    if (bound !== undefined) {
      cursor = { period: periods[k - 1]!.period, key: bound }
      i = k - 1
    } else {
      cursor = undefined
      i = k
    }
  }
  return out
}

/** Per visible day of the periods: its lines (of one creator, when given) after `after` (only in the first period), up to `want`, and the last of them. */
async function dayCuts(ch: ClickHouseClient, listing: Listing<unknown>, periods: Period[], after: Key | undefined, want: number, creatorId?: string): Promise<Map<Day, { lines: number; last: Key }>> {
  const [k0, k1] = listing.keys
  const params: Record<string, unknown> = { want, creator_id: creatorId ?? '' }
  if (after) [params.after_0, params.after_1] = after
  const creator = creatorId === undefined ? '' : ' AND creator_id = {creator_id:String}'
  const reads: string[] = []
  periods.forEach((p, pi) =>
    p.days.forEach(([day, run]) => {
      const n = reads.length
      params[`day_${n}`] = day
      params[`run_${n}`] = run
      reads.push(`SELECT * FROM (SELECT day, ${k0}, ${k1} FROM ${listing.table}
        WHERE day = {day_${n}:Date} AND run_id = {run_${n}:UInt64}${creator}${pi === 0 && after ? ` AND ${k0} >= {after_0:String} AND (${k0}, ${k1}) > ({after_0:String}, {after_1:String})` : ''}
        ORDER BY ${k0}, ${k1} LIMIT {want:UInt64})`)
    }),
  )
  const rows = await select(
    ch,
    `SELECT toString(day) AS day, count() AS lines, max((${k0}, ${k1})) AS last FROM (${reads.join('\n      UNION ALL ')}) GROUP BY day`,
    params,
    z.object({ day: z.string(), lines: u64, last: z.tuple([z.string(), z.string()]) }),
  )
  return new Map(rows.map((r) => [r.day as Day, { lines: r.lines, last: r.last }]))
}

/** The listing's rows of these periods after `after` (in the first) and up to `bound` (in the last): at most `want`. */
async function groupPeriods<R>(
  ch: ClickHouseClient,
  q: SettlementQuery,
  checked: Read,
  listing: Listing<R>,
  periods: Period[],
  after: Key | undefined,
  bound: Key | undefined,
  want: number,
): Promise<R[]> {
  const [k0, k1] = listing.keys
  const first = periods[0]!
  const last = periods.at(-1)!
  const params: Record<string, unknown> = { ...checked.params, first_day: first.days[0]![0], last_day: last.days.at(-1)![0], want }
  let where = `${checked.where} AND day >= {first_day:Date} AND day <= {last_day:Date}`
  // Conditions on the first key, which the primary key (day, run, creator, video[, ad]) is searched by within a day.
  if (after) {
    Object.assign(params, { after_through: first.days.at(-1)![0], after_0: after[0], after_1: after[1] })
    where += ` AND (day > {after_through:Date} OR (${k0} >= {after_0:String} AND (${k0}, ${k1}) > ({after_0:String}, {after_1:String})))`
  }
  if (bound) {
    Object.assign(params, { bound_from: last.days[0]![0], bound_0: bound[0], bound_1: bound[1] })
    where += ` AND (day < {bound_from:Date} OR (${k0} <= {bound_0:String} AND (${k0}, ${k1}) <= ({bound_0:String}, {bound_1:String})))`
  }
  return listing.page(ch, q, { ...checked, params, settings: LISTING_SETTINGS }, where)
}
