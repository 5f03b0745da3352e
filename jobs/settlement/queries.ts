import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { parseDay } from './calendar.ts'
import { adPeriodPage, manyLines, videoDayPage, videoPeriodPage } from './pages.ts'
import { AD_LISTING_KEYS, amounts, checkQuery, linesUnion, pageOf, select, selectWithStatus, u64, VIDEO_LISTING_KEYS, visibleRuns, withTotal } from './read.ts'
import type { SettlementAdRow, SettlementQuery, SettlementStatus, SettlementTotalsRow, SettlementVideoRow, VisibleRuns } from './read.ts'

export { AD_LISTING_KEYS, VIDEO_LISTING_KEYS, visibleRuns, visibleRunsOf } from './read.ts'
export type { SettlementAdRow, SettlementGrain, SettlementQuery, SettlementStatus, SettlementTotalsRow, SettlementVideoRow, VisibleRuns } from './read.ts'

/**
 * The read side of settlement, for the analytics API: totals per creator, per video and
 * per ad, by day, ISO week (Monday), month and year. Every figure is a sum of the visible
 * day lines (each day's latest committed run), so the grains reconcile exactly.
 * A period covers only the days of [from, to] inside it; periods without lines are left out.
 * A period is `final` when none of its days inside [from, to] can change any more.
 */

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
 * Settlement per period and video, in the order of period, creator and video. A page of it
 * with `limit`: by day read in the lines' order (videoDayPage); over longer periods, the
 * platform's (no creator or video) and a creator's of many lines (manyLines) a window of days
 * at a time (videoPeriodPage), other creators' and a video's by grouping what follows the cursor.
 */
export async function settlementByVideo(ch: ClickHouseClient, q: SettlementQuery, visible?: VisibleRuns, opts: { periodPageLines?: number } = {}): Promise<SettlementVideoRow[]> {
  if (q.limit !== undefined) {
    if (q.grain === 'day') return videoDayPage(ch, { ...q, limit: q.limit }, visible)
    if (q.videoId === undefined) {
      visible ??= await visibleRuns(ch)
      if (q.creatorId === undefined || (await manyLines(ch, q, visible, opts.periodPageLines))) return videoPeriodPage(ch, { ...q, limit: q.limit }, visible)
    }
  }
  const checked = checkQuery(q, visible)
  const page = pageOf(q, checked.period, VIDEO_LISTING_KEYS)
  const read = { ...checked, params: { ...checked.params, ...page.params }, settings: page.settings }
  const sums = await selectWithStatus(
    ch,
    q,
    read,
    `SELECT period, creator_id, video_id, sum(views) AS views, sum(video_krw) AS video_revenue_krw,
       sum(impressions) AS ad_impressions, sum(ad_krw) AS ad_revenue_krw, ${read.lastFinal}
     FROM (${linesUnion(read.period, read.where + page.where)}) GROUP BY period, creator_id, video_id ORDER BY period, creator_id, video_id${page.limit}`,
    z.object({ period: z.string(), creator_id: z.string(), video_id: z.string(), ...amounts }),
  )
  return sums.map(withTotal)
}

/**
 * Settlement per period, video and ad. A page of one creator's with `limit`, when its ad lines
 * of the range are many (manyLines), a window of days at a time (adPeriodPage); else by
 * grouping what follows the cursor.
 */
export async function settlementByAd(ch: ClickHouseClient, q: SettlementQuery, visible?: VisibleRuns, opts: { periodPageLines?: number } = {}): Promise<SettlementAdRow[]> {
  if (q.limit !== undefined && q.creatorId !== undefined && q.videoId === undefined) {
    visible ??= await visibleRuns(ch)
    if (await manyLines(ch, q, visible, opts.periodPageLines, 'settlement_ad_lines')) return adPeriodPage(ch, { ...q, limit: q.limit, creatorId: q.creatorId }, visible)
  }
  const checked = checkQuery(q, visible)
  const page = pageOf(q, checked.period, AD_LISTING_KEYS)
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
