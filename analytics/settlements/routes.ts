import { Hono, type Context } from 'hono'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { AD_LISTING_KEYS, settlementByAd, settlementByVideo, settlementTotals, VIDEO_LISTING_KEYS, visibleRuns, type SettlementQuery } from '../../jobs/settlement/queries.ts'
import { SettlementError, settlementErrorCodes } from '../../jobs/settlement/errors.ts'
import { ApiError } from '../../lib/errors.ts'
import { principalOf } from '../auth/middleware.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { table } from '../http/csv.ts'
import { cursorOf, keyOfCursor } from '../http/cursor.ts'
import { cacheStatus, type CacheOutcome } from '../cache/aggregate-cache.ts'
import { createSettlementCache } from './cache.ts'
import { periodStart, rangeQuery, type RangeQuery } from '../http/dates.ts'
import { v } from '../http/validate.ts'
import { videoForCaller } from '../videos/store.ts'
import { videoIdParam } from '../videos/routes.ts'

const tags = ['settlement']
const totalsColumns = ['period', 'views', 'video_revenue_krw', 'ad_impressions', 'ad_revenue_krw', 'total_krw', 'status'] as const
const videoColumns = ['period', 'video_id', 'creator_id', 'views', 'video_revenue_krw', 'ad_impressions', 'ad_revenue_krw', 'total_krw', 'status'] as const
const adColumns = ['period', 'video_id', 'ad_id', 'impressions', 'ad_revenue_krw', 'status'] as const

const describe = (summary: string) =>
  describeRoute({
    tags,
    summary,
    description:
      'Amounts in whole KRW (each line truncated, totals are sums of lines). Periods start at the period holding `from` and end at `to`; ' +
      'a period is `final` only when every one of its days is settled and final, else `provisional`. Periods with nothing settled are left out.',
  })

type Kind = 'totals' | 'videos' | 'ads'

/**
 * Rows a listing's page holds at most, and by default: a page is built in memory whole (a
 * page of 100,000 rows took the server ~450 MiB more than one of 1,000). Until 7 December a
 * listing was one answer: a platform's per-video day of the 100M-event day, 4.46M rows, took
 * the server to 6.1 GiB for 30 s.
 */
export const MAX_PAGE_ROWS = 100_000
export const DEFAULT_PAGE_ROWS = 10_000
/** A listing's page: how many rows, and where the one before ended (its `next`). */
const pageQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_ROWS)
    .default(DEFAULT_PAGE_ROWS)
    .describe(`Rows of a page (${DEFAULT_PAGE_ROWS} by default, at most ${MAX_PAGE_ROWS}). In order of period, then: per video, creator and video; per ad, video and ad`),
  after: z.string().min(1).max(1024).optional().describe('The `next` of the page before (in CSV, the `rel="next"` link); without it, the first page'),
})
type PageQuery = z.infer<typeof pageQuery>

/** `/v1/me/settlements[/videos|/ads]` and `/v1/videos/{id}/settlements[/ads]`. */
export function settlementRoutes(deps: AnalyticsDeps) {
  const { ch } = deps.services
  const cache = createSettlementCache(deps.services.redis, { visibleRuns: () => visibleRuns(ch) })

  async function answer(c: Context, kind: Kind, q: RangeQuery & Partial<PageQuery>, scope: { creatorId?: string; videoId?: string }, filename: string) {
    const query: SettlementQuery = { ...scope, grain: q.grain, from: periodStart(q.grain, q.from), to: q.to }
    if (kind !== 'totals') {
      query.limit = q.limit ?? DEFAULT_PAGE_ROWS
      if (q.after !== undefined) query.after = keyOfCursor(q.after)
    }
    const meta = { grain: q.grain, from: query.from, to: q.to, currency: 'KRW' }
    // The header says whether the rows came from the cache (RFC 9211), as on stats and top.
    const served = <T,>(answer: { rows: T[]; outcome: CacheOutcome }): T[] => {
      c.header('cache-status', cacheStatus(answer.outcome, answer.outcome === 'miss'))
      return answer.rows
    }
    /** A listing's page: its rows, and the cursor of its last row when more follow (the query reads one row more). */
    const page = <T extends Record<string, unknown>>(rows: T[], keys: readonly string[]) => {
      const limit = query.limit!
      if (rows.length <= limit) return { rows, next: null }
      const last = rows[limit - 1]!
      return { rows: rows.slice(0, limit), next: cursorOf([String(last.period), ...keys.map((k) => String(last[k]))]) }
    }
    try {
      if (kind === 'totals') return table(c, { format: q.format, columns: totalsColumns, rows: served(await cache.get(kind, query, (visible) => settlementTotals(ch, query, visible))), meta, filename })
      if (kind === 'videos') {
        const { rows, next } = page(served(await cache.get(kind, query, (visible) => settlementByVideo(ch, query, visible))), VIDEO_LISTING_KEYS)
        return table(c, { format: q.format, columns: videoColumns, rows, meta, filename, next })
      }
      const { rows, next } = page(served(await cache.get(kind, query, (visible) => settlementByAd(ch, query, visible))), AD_LISTING_KEYS)
      return table(c, { format: q.format, columns: adColumns, rows, meta, filename, next })
    } catch (err) {
      if (err instanceof SettlementError) throw new ApiError(settlementErrorCodes[err.code], err.message)
      throw err
    }
  }

  const app = new Hono<AnalyticsEnv>()
  const listQuery = z.intersection(rangeQuery, pageQuery)
  app.get('/me/settlements', describe("The caller's settlement per period"), deps.auth.require(), v('query', rangeQuery), (c) =>
    answer(c, 'totals', c.req.valid('query'), { creatorId: principalOf(c).userId }, 'settlements-totals'),
  )
  for (const [suffix, kind] of [['/videos', 'videos'], ['/ads', 'ads']] as const) {
    app.get(`/me/settlements${suffix}`, describe(`The caller's settlement per period and ${kind === 'videos' ? 'video' : 'video and ad'}, a page at a time`), deps.auth.require(), v('query', listQuery), (c) =>
      answer(c, kind, c.req.valid('query'), { creatorId: principalOf(c).userId }, `settlements-${kind}`),
    )
  }
  app.get('/videos/:id/settlements', describe("One video's settlement per period (its creator or an admin)"), deps.auth.require(), v('param', videoIdParam), v('query', rangeQuery), async (c) => {
    const video = await videoForCaller(ch, c.req.valid('param').id, principalOf(c))
    return answer(c, 'totals', c.req.valid('query'), { videoId: video.video_id }, `settlements-${video.video_id}-totals`)
  })
  const adsDescription = "One video's settlement per period and ad, a page at a time (its creator or an admin)"
  app.get('/videos/:id/settlements/ads', describe(adsDescription), deps.auth.require(), v('param', videoIdParam), v('query', listQuery), async (c) => {
    const video = await videoForCaller(ch, c.req.valid('param').id, principalOf(c))
    return answer(c, 'ads', c.req.valid('query'), { videoId: video.video_id }, `settlements-${video.video_id}-ads`)
  })
  const adminQuery = z.intersection(listQuery, z.object({ creator_id: z.string().min(1).max(64).optional().describe('Only this creator') }))
  app.get('/admin/settlements', describe('Platform settlement per period and video, a page at a time (role admin)'), deps.auth.require('admin'), v('query', adminQuery), (c) => {
    const q = c.req.valid('query')
    return answer(c, 'videos', q, { creatorId: q.creator_id }, 'settlements-platform')
  })
  return app
}
