import { Hono } from 'hono'
import { describeRoute } from 'hono-openapi'
import { principalOf } from '../auth/middleware.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { table } from '../http/csv.ts'
import { singleFlight } from '../http/single-flight.ts'
import { rangeQuery } from '../http/dates.ts'
import { v } from '../http/validate.ts'
import { videoForCaller } from '../videos/store.ts'
import { videoIdParam } from '../videos/routes.ts'
import { statsColumns, videoStats } from './queries.ts'

/** `/v1/videos/{id}/stats`: views, watch time, ad impressions, unique viewers, excluded views by reason. */
export function statsRoutes(deps: AnalyticsDeps) {
  const { ch } = deps.services
  const shared = singleFlight<Awaited<ReturnType<typeof videoStats>>>()
  return new Hono<AnalyticsEnv>().get(
    '/videos/:id/stats',
    describeRoute({ tags: ['stats'], summary: "A video's figures per day, week, month or year (its creator or an admin)" }),
    deps.auth.require(),
    v('param', videoIdParam),
    v('query', rangeQuery),
    async (c) => {
      const video = await videoForCaller(ch, c.req.valid('param').id, principalOf(c))
      const q = c.req.valid('query')
      const query = { videoId: video.video_id, creatorId: video.creator_id, grain: q.grain, from: q.from, to: q.to }
      const rows = await shared(JSON.stringify(query), () => videoStats(ch, query))
      return table(c, { format: q.format, columns: statsColumns, rows, meta: { video_id: video.video_id, grain: q.grain, from: q.from, to: q.to }, filename: `stats-${video.video_id}` })
    },
  )
}
