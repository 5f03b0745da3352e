import { Hono, type Context } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import { describeRoute } from 'hono-openapi'
import { signPlaybackToken } from '../../ingest/tokens/playback.ts'
import { ApiError } from '../../lib/errors.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { today } from '../http/dates.ts'
import { v } from '../http/validate.ts'
import { findVideo } from '../videos/store.ts'
import { videoIdParam } from '../videos/routes.ts'
import { playbackLookups } from './lookups.ts'
import { DEVICE_ID, limitPlayStarts, newDeviceId, pickAds, resumePosition } from './sessions.ts'

const tags = ['playback']
const DEVICE_COOKIE = 'cs_device'

/** `/v1/videos/{id}/play` (anonymous or logged in) and `/v1/videos/{id}/resume`. */
export function playbackRoutes(deps: AnalyticsDeps) {
  const { services, settings } = deps
  const { ch, redis } = services

  /** The viewer: the logged-in user, else the device id (cookie or X-Device-Id). */
  const viewerOf = (c: Context<AnalyticsEnv>): string | undefined => {
    const p = c.get('principal')
    if (p) return p.userId
    const device = getCookie(c, DEVICE_COOKIE) ?? c.req.header('x-device-id')
    return device && DEVICE_ID.test(device) ? device : undefined
  }

  return new Hono<AnalyticsEnv>()
    .post(
      '/videos/:id/play',
      describeRoute({ tags, security: [{}, { bearerAuth: [] }], summary: 'Start a playback session: the playback token for the ingest edge, the resume position and the ads to show (rate limited per IP)' }),
      deps.auth.optional,
      v('param', videoIdParam),
      async (c) => {
        await limitPlayStarts(redis, deps.clientIp(c), settings.PLAY_RATE_LIMIT_PER_MINUTE)
        const videoId = c.req.valid('param').id
        const known = viewerOf(c)
        const viewerId = known ?? newDeviceId()
        // The video, its ads and the viewer's position asked for at once, each read with the
        // concurrent starts' (a device id made for this start has no position anywhere yet).
        const serving = playbackLookups(ch).servedAds(videoId, today(services.settings.SETTLEMENT_TZ))
        const resuming = known === undefined ? Promise.resolve({ position_ms: 0, updated_at: null }) : resumePosition(ch, redis, videoId, viewerId)
        // Awaited below once the video is found; not unhandled when it is not, or its lookup fails.
        for (const p of [serving, resuming]) p.catch(() => {})
        const video = await findVideo(ch, videoId)
        if (!video) throw new ApiError('NOT_FOUND', `no video with id ${videoId}`)
        if (known === undefined) setCookie(c, DEVICE_COOKIE, viewerId, { httpOnly: true, secure: settings.cookieSecure, sameSite: 'Lax', path: '/', maxAge: 400 * 86_400 })
        const sessionId = crypto.randomUUID()
        const ads = pickAds(await serving, sessionId)
        const [{ token, expiresAt }, resume] = await Promise.all([
          signPlaybackToken(
            services.playbackKeys,
            { issuer: services.settings.PLAYBACK_TOKEN_ISSUER, ttlSeconds: services.settings.PLAYBACK_TOKEN_TTL_SECONDS },
            { viewerId, videoId: video.video_id, creatorId: video.creator_id, sessionId, adIds: ads.map((a) => a.ad_id), durationMs: video.duration_ms },
          ),
          resuming,
        ])
        return c.json(
          {
            session_id: sessionId,
            token,
            expires_at: expiresAt.toISOString(),
            resume_position_ms: resume.position_ms,
            ads,
            viewer_id: viewerId,
            video: { id: video.video_id, title: video.title, duration_ms: video.duration_ms },
          },
          201,
        )
      },
    )
    .get('/videos/:id/resume', describeRoute({ tags, security: [{}, { bearerAuth: [] }], summary: "The caller's resume position (logged in, or the device id from /play)" }), deps.auth.optional, v('param', videoIdParam), async (c) => {
      const viewerId = viewerOf(c)
      if (!viewerId) throw new ApiError('UNAUTHORIZED', 'log in, or send the device id /play gave you (cs_device cookie or X-Device-Id)')
      const video = await findVideo(ch, c.req.valid('param').id)
      if (!video) throw new ApiError('NOT_FOUND', `no video with id ${c.req.valid('param').id}`)
      return c.json({ video_id: video.video_id, viewer_id: viewerId, ...(await resumePosition(ch, redis, video.video_id, viewerId)) })
    })
}
