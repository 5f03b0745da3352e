import { Hono } from 'hono'
import { createMiddleware } from 'hono/factory'
import { describeRoute } from 'hono-openapi'
import { principalOf } from '../auth/middleware.ts'
import { cacheStatus } from '../cache/aggregate-cache.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { arrivals } from '../http/arrivals.ts'
import { table } from '../http/csv.ts'
import { rangeQuery } from '../http/dates.ts'
import { v } from '../http/validate.ts'
import { videoForCaller } from '../videos/store.ts'
import { videoIdParam } from '../videos/routes.ts'
import { statsColumns } from './queries.ts'
import { createStatsReader } from './reader.ts'

/** A stats request's hand-back of its ticket of the requests under way (see arrivals.ts). */
type StatsEnv = { Variables: AnalyticsEnv['Variables'] & { joined?: () => void } }

/** `/v1/videos/{id}/stats`: views, watch time, ad impressions, unique viewers, excluded views by reason. */
export function statsRoutes(deps: AnalyticsDeps) {
  const { ch, settings } = deps.services
  // Stats requests under way, from before their access token is checked until they join a batch.
  const onTheWay = arrivals()
  const readStats = createStatsReader({
    ch,
    cache: deps.aggregateCache,
    rules: settings,
    now: deps.now,
    closedTtlSeconds: deps.settings.CLOSED_PERIOD_CACHE_TTL_SECONDS,
    openMaxAgeMs: deps.settings.OPEN_PERIOD_REUSE_MAX_MS,
    openViewerSetsMax: deps.settings.OPEN_VIEWER_SETS_MAX,
    openRowsMax: deps.settings.OPEN_ROWS_MAX,
    openRowsViewersMax: deps.settings.OPEN_ROWS_VIEWERS_MAX,
    registry: deps.services.metrics.registry,
    // A ClickHouse server runs queries side by side; chDB one at a time.
    concurrency: settings.embedded ? 1 : 4,
    batchGatherMs: deps.settings.STATS_BATCH_GATHER_MS,
    onTheWay,
    batchGatherMaxMs: deps.settings.STATS_BATCH_GATHER_MAX_MS,
  })
  return new Hono<StatsEnv>().get(
    '/videos/:id/stats',
    describeRoute({
      tags: ['stats'],
      summary: "A video's figures per day, week, month or year (its creator or an admin)",
      description:
        'Periods whose every day is closed (past the lateness window) are served from a cache; open days are queried, and the answer reused only until the next load of events into ClickHouse. ' +
        'The `Cache-Status` header (RFC 9211) says which: `analytics; hit`, `fwd=partial`, `fwd=miss`, `fwd=bypass`.',
    }),
    createMiddleware<StatsEnv>(async function onItsWay(c, next) {
      const back = onTheWay.take()
      c.set('joined', back)
      try {
        await next()
      } finally {
        back()
      }
    }),
    deps.auth.require(),
    v('param', videoIdParam),
    v('query', rangeQuery),
    async (c) => {
      const q = c.req.valid('query')
      // The versions, the table's part list and the video's cached rows of closed periods are read while
      // the video is looked up; the rows are answered only once the caller is found to own it.
      const prepared = readStats.prepare(q.grain, { videoId: c.req.valid('param').id, from: q.from, to: q.to })
      // Ownership first: the cache is reached only by callers who may see the video.
      const video = await videoForCaller(ch, c.req.valid('param').id, principalOf(c))
      const { rows, outcome, stored } = await readStats({ videoId: video.video_id, creatorId: video.creator_id, grain: q.grain, from: q.from, to: q.to }, c.get('joined'), prepared)
      deps.aggregateCache.count('stats', outcome)
      c.header('cache-status', cacheStatus(outcome, stored))
      return table(c, { format: q.format, columns: statsColumns, rows, meta: { video_id: video.video_id, grain: q.grain, from: q.from, to: q.to }, filename: `stats-${video.video_id}` })
    },
  )
}
