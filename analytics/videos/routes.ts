import { Hono } from 'hono'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { apiInstant } from '../../lib/instants.ts'
import { runAdAssignmentForVideo } from '../ads/assignment.ts'
import { principalOf } from '../auth/middleware.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { table } from '../http/csv.ts'
import { cursorOf, keyOfCursor } from '../http/cursor.ts'
import { v } from '../http/validate.ts'
import { insertVideo, listVideos, liveViews, videoForCaller } from './store.ts'

const tags = ['videos']

/** What a creator may send; anything else (creator id, counts, ids) is ignored. */
export const createVideoBody = z.object({
  title: z.string().trim().min(1).max(200),
  duration_ms: z.number().int().min(1).max(7 * 24 * 3600 * 1000).describe('Duration of the video (ms)'),
})
export const videoIdParam = z.object({ id: z.string().min(1).max(64) })
/** Videos of a page of `/v1/me/videos` by default, and at most. */
export const DEFAULT_VIDEO_PAGE = 1_000
export const MAX_VIDEO_PAGE = 10_000
/** A cursor's time: created_at as the engine writes it (`toString` of a DateTime64(3)). */
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,3})?$/
const listQuery = z.object({
  format: z.enum(['json', 'csv']).default('json'),
  limit: z.coerce.number().int().min(1).max(MAX_VIDEO_PAGE).default(DEFAULT_VIDEO_PAGE).describe(`Videos of a page, newest first (${DEFAULT_VIDEO_PAGE} by default, at most ${MAX_VIDEO_PAGE})`),
  after: z.string().min(1).max(1024).optional().describe('The `next` of the page before (in CSV, the `rel="next"` link); without it, the first page'),
})
/** A video as the API answers it: its registration time in RFC 3339 (lib/instants.ts). */
const publicVideo = <V extends { created_at: string }>(video: V): V => ({ ...video, created_at: apiInstant(video.created_at) })

/** `/v1/videos` (register), `/v1/videos/{id}` (metadata + live views), `/v1/me/videos`. */
export function videoRoutes(deps: AnalyticsDeps) {
  const { ch, redis } = deps.services
  return new Hono<AnalyticsEnv>()
    .post('/videos', describeRoute({ tags, summary: 'Register a video (role creator); active ads are assigned to it', responses: { 201: { description: 'The video' } } }), deps.auth.require('creator'), v('json', createVideoBody), async (c) => {
      const body = c.req.valid('json')
      const video = await insertVideo(ch, { creatorId: principalOf(c).userId, title: body.title, durationMs: body.duration_ms })
      const ads = await runAdAssignmentForVideo(deps, video.video_id)
      return c.json({ ...publicVideo(video), views: 0, ads }, 201)
    })
    .get('/me/videos', describeRoute({ tags, summary: "The caller's videos, newest first, a page at a time" }), deps.auth.require(), v('query', listQuery), async (c) => {
      const q = c.req.valid('query')
      const after = q.after === undefined ? undefined : (keyOfCursor(q.after, (k) => k.length === 2 && CURSOR_TIME.test(k[0]!)) as [string, string])
      const { rows, more } = await listVideos(ch, principalOf(c).userId, { limit: q.limit, after })
      const last = rows.at(-1)
      const next = more && last ? cursorOf([last.created_at, last.video_id]) : null
      return table(c, { format: q.format, columns: ['video_id', 'creator_id', 'title', 'duration_ms', 'created_at'], rows: rows.map(publicVideo), filename: 'videos', next })
    })
    .get('/videos/:id', describeRoute({ tags, summary: 'Video metadata with the live view count (its creator or an admin)' }), deps.auth.require(), v('param', videoIdParam), async (c) => {
      const video = await videoForCaller(ch, c.req.valid('param').id, principalOf(c))
      const { views, source } = await liveViews(ch, redis, video.video_id)
      return c.json({ ...publicVideo(video), views, views_source: source })
    })
}
