import { Hono } from 'hono'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { principalOf } from '../auth/middleware.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { table } from '../http/csv.ts'
import { singleFlight } from '../http/single-flight.ts'
import { isoDate, today } from '../http/dates.ts'
import { v } from '../http/validate.ts'
import { topVideos } from './queries.ts'

const topQuery = z.object({
  metric: z.enum(['views', 'watch_time']).default('views'),
  grain: z.enum(['day', 'week', 'month']).default('day'),
  date: isoDate.optional().describe('A day of the period (default today in SETTLEMENT_TZ)'),
  limit: z.coerce.number().int().min(1).max(100).default(5),
  format: z.enum(['json', 'csv']).default('json'),
})

const columns = ['rank', 'video_id', 'creator_id', 'title', 'views', 'watch_ms'] as const

/** `/v1/me/top` (the caller's videos) and `/v1/top` (platform-wide; admins and analysts). */
export function topRoutes(deps: AnalyticsDeps) {
  const { ch, settings } = deps.services
  const shared = singleFlight<Awaited<ReturnType<typeof topVideos>>>()
  const answer = async (c: Parameters<typeof table>[0], q: z.infer<typeof topQuery>, creatorId?: string) => {
    const date = q.date ?? today(settings.SETTLEMENT_TZ)
    const query = { creatorId, metric: q.metric, grain: q.grain, date, limit: q.limit }
    const { period, rows } = await shared(JSON.stringify(query), () => topVideos(ch, query))
    return table(c, { format: q.format, columns, rows, meta: { metric: q.metric, grain: q.grain, period }, filename: `top-${q.grain}-${period}` })
  }
  return new Hono<AnalyticsEnv>()
    .get('/me/top', describeRoute({ tags: ['top'], summary: "The caller's top videos of a day, week or month" }), deps.auth.require(), v('query', topQuery), (c) =>
      answer(c, c.req.valid('query'), principalOf(c).userId),
    )
    .get('/top', describeRoute({ tags: ['top'], summary: 'Top videos of the platform (roles admin, analyst)' }), deps.auth.require('admin', 'analyst'), v('query', topQuery), (c) => answer(c, c.req.valid('query')))
}
