import { Hono, type Context } from 'hono'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { principalOf } from '../auth/middleware.ts'
import { cacheStatus } from '../cache/aggregate-cache.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { table } from '../http/csv.ts'
import { isoDate, today } from '../http/dates.ts'
import { v } from '../http/validate.ts'
import { MAX_TOP_LIMIT } from './queries.ts'
import { createTopReader } from './reader.ts'

const topQuery = z.object({
  metric: z.enum(['views', 'watch_time']).default('views'),
  grain: z.enum(['day', 'week', 'month']).default('day'),
  date: isoDate.optional().describe('A day of the period (default today in SETTLEMENT_TZ)'),
  limit: z.coerce.number().int().min(1).max(MAX_TOP_LIMIT).default(5),
  format: z.enum(['json', 'csv']).default('json'),
})

const columns = ['rank', 'video_id', 'creator_id', 'title', 'views', 'watch_ms'] as const

const description =
  'The top of a closed period (past the lateness window) is served from a cache. The platform-wide top of an open period may be up to ' +
  'PLATFORM_TOP_OPEN_CACHE_TTL_SECONDS old (plus the time its query takes); a creator’s top of an open period is reused only until the next load of events into ClickHouse. ' +
  'The `Cache-Status` header (RFC 9211) says which: `analytics; hit`, `fwd=miss`, `fwd=bypass`.'

/** `/v1/me/top` (the caller's videos) and `/v1/top` (platform-wide; admins and analysts). */
export function topRoutes(deps: AnalyticsDeps) {
  const { ch, settings } = deps.services
  const readTop = createTopReader({
    ch,
    cache: deps.aggregateCache,
    rules: settings,
    now: deps.now,
    closedTtlSeconds: deps.settings.CLOSED_PERIOD_CACHE_TTL_SECONDS,
    platformOpenTtlSeconds: deps.settings.PLATFORM_TOP_OPEN_CACHE_TTL_SECONDS,
    openMaxAgeMs: deps.settings.OPEN_PERIOD_REUSE_MAX_MS,
  })
  const answer = async (c: Context, q: z.infer<typeof topQuery>, creatorId?: string) => {
    const date = q.date ?? today(settings.SETTLEMENT_TZ, deps.now())
    const { period, rows, outcome, stored } = await readTop({ creatorId, metric: q.metric, grain: q.grain, date, limit: q.limit })
    deps.aggregateCache.count(creatorId === undefined ? 'top' : 'me_top', outcome)
    c.header('cache-status', cacheStatus(outcome, stored))
    return table(c, { format: q.format, columns, rows, meta: { metric: q.metric, grain: q.grain, period }, filename: `top-${q.grain}-${period}` })
  }
  return new Hono<AnalyticsEnv>()
    .get('/me/top', describeRoute({ tags: ['top'], summary: "The caller's top videos of a day, week or month", description }), deps.auth.require(), v('query', topQuery), (c) =>
      answer(c, c.req.valid('query'), principalOf(c).userId),
    )
    .get('/top', describeRoute({ tags: ['top'], summary: 'Top videos of the platform (roles admin, analyst)', description }), deps.auth.require('admin', 'analyst'), v('query', topQuery), (c) => answer(c, c.req.valid('query')))
}
