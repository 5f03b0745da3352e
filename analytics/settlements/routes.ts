import { Hono, type Context } from 'hono'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { settlementByAd, settlementByVideo, settlementTotals, visibleRuns, type SettlementQuery } from '../../jobs/settlement/queries.ts'
import { SettlementError, settlementErrorCodes } from '../../jobs/settlement/errors.ts'
import { ApiError } from '../../lib/errors.ts'
import { principalOf } from '../auth/middleware.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { table } from '../http/csv.ts'
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

/** `/v1/me/settlements[/videos|/ads]` and `/v1/videos/{id}/settlements[/ads]`. */
export function settlementRoutes(deps: AnalyticsDeps) {
  const { ch } = deps.services
  const cache = createSettlementCache(deps.services.redis, { visibleRuns: () => visibleRuns(ch) })

  async function answer(c: Context, kind: Kind, q: RangeQuery, scope: { creatorId?: string; videoId?: string }, filename: string) {
    const query: SettlementQuery = { ...scope, grain: q.grain, from: periodStart(q.grain, q.from), to: q.to }
    const meta = { grain: q.grain, from: query.from, to: q.to, currency: 'KRW' }
    // The header says whether the rows came from the cache (RFC 9211), as on stats and top.
    const served = <T,>(answer: { rows: T[]; outcome: CacheOutcome }): T[] => {
      c.header('cache-status', cacheStatus(answer.outcome, answer.outcome === 'miss'))
      return answer.rows
    }
    try {
      if (kind === 'totals') return table(c, { format: q.format, columns: totalsColumns, rows: served(await cache.get(kind, query, (visible) => settlementTotals(ch, query, visible))), meta, filename })
      if (kind === 'videos') return table(c, { format: q.format, columns: videoColumns, rows: served(await cache.get(kind, query, (visible) => settlementByVideo(ch, query, visible))), meta, filename })
      return table(c, { format: q.format, columns: adColumns, rows: served(await cache.get(kind, query, (visible) => settlementByAd(ch, query, visible))), meta, filename })
    } catch (err) {
      if (err instanceof SettlementError) throw new ApiError(settlementErrorCodes[err.code], err.message)
      throw err
    }
  }

  const app = new Hono<AnalyticsEnv>()
  for (const [suffix, kind] of [['', 'totals'], ['/videos', 'videos'], ['/ads', 'ads']] as const) {
    app.get(`/me/settlements${suffix}`, describe(`The caller's settlement ${kind === 'totals' ? 'per period' : `per period and ${kind === 'videos' ? 'video' : 'video and ad'}`}`), deps.auth.require(), v('query', rangeQuery), (c) =>
      answer(c, kind, c.req.valid('query'), { creatorId: principalOf(c).userId }, `settlements-${kind}`),
    )
  }
  for (const [suffix, kind] of [['', 'totals'], ['/ads', 'ads']] as const) {
    app.get(`/videos/:id/settlements${suffix}`, describe(`One video's settlement ${kind === 'totals' ? 'per period' : 'per period and ad'} (its creator or an admin)`), deps.auth.require(), v('param', videoIdParam), v('query', rangeQuery), async (c) => {
      const video = await videoForCaller(ch, c.req.valid('param').id, principalOf(c))
      return answer(c, kind, c.req.valid('query'), { videoId: video.video_id }, `settlements-${video.video_id}-${kind}`)
    })
  }
  const adminQuery = z.intersection(rangeQuery, z.object({ creator_id: z.string().min(1).max(64).optional().describe('Only this creator') }))
  app.get('/admin/settlements', describe('Platform settlement per period and video (role admin)'), deps.auth.require('admin'), v('query', adminQuery), (c) => {
    const q = c.req.valid('query')
    return answer(c, 'videos', q, { creatorId: q.creator_id }, 'settlements-platform')
  })
  return app
}
