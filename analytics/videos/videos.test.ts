import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keys } from '../../ingest/state/keys.ts'
import { ADMIN_EMAIL, startAnalyticsApi, type Session, type TestApi } from '../../test/analytics/helpers.ts'

let api: TestApi
let creator: Session
let other: Session
let viewer: Session
let admin: Session
let videoId: string

type Video = { video_id: string; creator_id: string; title: string; duration_ms: number; created_at: string; views: number; views_source: string }
/** An instant as the API answers every one: RFC 3339 in UTC with milliseconds (lib/instants.ts). */
const RFC_3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
type Play = { session_id: string; token: string; expires_at: string; resume_position_ms: number; ads: { ad_id: string; slot: string }[]; viewer_id: string }

beforeAll(async () => {
  api = await startAnalyticsApi({ PLAY_RATE_LIMIT_PER_MINUTE: '10' })
  ;[creator, other, viewer, admin] = await Promise.all([
    api.login('creator-a', { creator: true }),
    api.login('creator-b', { creator: true }),
    api.login('viewer-v'),
    api.login('admin', { email: ADMIN_EMAIL }),
  ])
  const res = await api.request('/v1/videos', { method: 'POST', token: creator.token, json: { title: 'First', duration_ms: 60_000 } })
  videoId = ((await res.json()) as Video).video_id
})
afterAll(() => api?.stop())

describe('registering videos', () => {
  it('creates a video owned by the caller, ignoring client-sent owner, id and counts', async () => {
    const res = await api.request('/v1/videos', {
      method: 'POST',
      token: creator.token,
      json: { title: 'Mine', duration_ms: 90_000, creator_id: other.userId, video_id: 'v_chosen', views: 1_000_000, created_at: '2000-01-01' },
    })
    expect(res.status).toBe(201)
    const video = (await res.json()) as Video
    expect(video).toMatchObject({ creator_id: creator.userId, title: 'Mine', duration_ms: 90_000, views: 0 })
    expect(video.video_id).not.toBe('v_chosen')
    expect(video.video_id).toMatch(/^v_/)
    // Registered now, answered as an instant in UTC (not the engine's '2026-12-06 22:17:48.475').
    expect(video.created_at).toMatch(RFC_3339_UTC)
    expect(Math.abs(Date.parse(video.created_at) - Date.now())).toBeLessThan(60_000)
    const read = (await (await api.request(`/v1/videos/${video.video_id}`, { token: creator.token })).json()) as Video
    expect(read.created_at).toBe(video.created_at)
  })

  it('refuses callers without the creator role and bad bodies', async () => {
    expect((await api.request('/v1/videos', { method: 'POST', json: { title: 'x', duration_ms: 1 } })).status).toBe(401)
    const forbidden = await api.request('/v1/videos', { method: 'POST', token: viewer.token, json: { title: 'x', duration_ms: 1 } })
    expect(forbidden.status).toBe(403)
    expect(await forbidden.json()).toMatchObject({ code: 'FORBIDDEN' })
    const bad = await api.request('/v1/videos', { method: 'POST', token: creator.token, json: { title: '', duration_ms: -5 } })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { detail: string }).detail).toMatch(/title/)
  })

  it('lists only the caller’s videos, in JSON and CSV', async () => {
    const mine = (await (await api.request('/v1/me/videos', { token: creator.token })).json()) as { rows: Video[] }
    expect(mine.rows.length).toBeGreaterThanOrEqual(2)
    expect(mine.rows.every((v) => v.creator_id === creator.userId)).toBe(true)
    const theirs = (await (await api.request('/v1/me/videos', { token: other.token })).json()) as { rows: Video[] }
    expect(theirs.rows).toEqual([])
    const csv = await api.request('/v1/me/videos?format=csv', { token: creator.token })
    expect(csv.headers.get('content-type')).toContain('text/csv')
    const lines = (await csv.text()).split('\r\n')
    expect(lines[0]).toBe('video_id,creator_id,title,duration_ms,created_at')
    expect(mine.rows.every((v) => RFC_3339_UTC.test(v.created_at))).toBe(true)
    expect(lines[1]!.split(',').at(-1)).toMatch(RFC_3339_UTC)
  })
})

describe('GET /v1/me/videos, a page at a time', () => {
  it('gives every video once, newest first, following `next` (also between videos registered in the same millisecond)', async () => {
    const many = await api.login('creator-many', { creator: true })
    for (let i = 0; i < 4; i++) expect((await api.request('/v1/videos', { method: 'POST', token: many.token, json: { title: `v${i}`, duration_ms: 1_000 } })).status).toBe(201)
    // Three registered at one instant: the page ends between them and the next goes on by id.
    const at = '2026-12-08 01:00:00.000'
    await api.s.ch.insert({ table: 'videos', format: 'JSONEachRow', values: ['v_tie_c', 'v_tie_a', 'v_tie_b'].map((video_id) => ({ video_id, creator_id: many.userId, title: video_id, duration_ms: 1_000, created_at: at, updated_at: at, deleted: 0 })) })
    const whole = (await (await api.request('/v1/me/videos', { token: many.token })).json()) as { rows: Video[]; next: string | null }
    expect(whole.rows).toHaveLength(7)
    expect(whole.next).toBeNull()
    const seen: string[] = []
    let after: string | null = null
    let pages = 0
    do {
      const page = (await (await api.request(`/v1/me/videos?limit=2${after ? `&after=${after}` : ''}`, { token: many.token })).json()) as { rows: Video[]; next: string | null }
      expect(page.rows.length).toBeLessThanOrEqual(2)
      seen.push(...page.rows.map((v) => v.video_id))
      after = page.next
      pages++
    } while (after !== null && pages < 10)
    expect(pages).toBe(4)
    expect(seen).toEqual(whole.rows.map((v) => v.video_id))
    expect(seen.slice(-3)).toEqual(['v_tie_a', 'v_tie_b', 'v_tie_c'])
    // CSV: the next page as a link.
    const csv = await api.request('/v1/me/videos?format=csv&limit=3', { token: many.token })
    expect(csv.headers.get('link')).toMatch(/^<\/v1\/me\/videos\?format=csv&limit=3&after=[\w-]+>; rel="next"$/)
  })

  it('refuses a cursor that is not one of its own, and a page size out of range, with 400', async () => {
    for (const query of ['after=not-a-cursor', `after=${Buffer.from(JSON.stringify(['yesterday', 'v_1'])).toString('base64url')}`, 'limit=0', 'limit=10001']) {
      const res = await api.request(`/v1/me/videos?${query}`, { token: creator.token })
      expect(res.status, query).toBe(400)
      expect(res.headers.get('content-type')).toContain('application/problem+json')
    }
  })
})

describe('GET /v1/videos/{id}', () => {
  it('shows the live view count from Redis, falling back to the aggregates', async () => {
    const before = (await (await api.request(`/v1/videos/${videoId}`, { token: creator.token })).json()) as Video
    expect(before).toMatchObject({ video_id: videoId, views: 0, views_source: 'aggregates' })
    await api.s.redis.set(keys.liveViews(videoId), '42')
    const after = (await (await api.request(`/v1/videos/${videoId}`, { token: creator.token })).json()) as Video
    expect(after).toMatchObject({ views: 42, views_source: 'live' })
  })

  it('gives another creator and a viewer the same 404 as a missing video; an admin sees it', async () => {
    for (const token of [other.token, viewer.token]) {
      const res = await api.request(`/v1/videos/${videoId}`, { token })
      expect(res.status).toBe(404)
      expect(await res.json()).toMatchObject({ code: 'NOT_FOUND' })
    }
    expect((await api.request('/v1/videos/v_missing', { token: creator.token })).status).toBe(404)
    expect((await api.request(`/v1/videos/${videoId}`, { token: admin.token })).status).toBe(200)
    expect((await api.request(`/v1/videos/${videoId}`)).status).toBe(401)
  })

  it('finds a video stored after a lookup of its id found nothing (unknown ids are not kept)', async () => {
    const id = 'v_registered_elsewhere'
    expect((await api.request(`/v1/videos/${id}`, { token: other.token })).status).toBe(404)
    // As another process would register it.
    const now = new Date().toISOString().slice(0, 19).replace('T', ' ')
    await api.s.ch.insert({ table: 'videos', values: [{ video_id: id, creator_id: other.userId, title: 'Elsewhere', duration_ms: 1000, created_at: now, updated_at: now, deleted: 0 }], format: 'JSONEachRow' })
    expect((await api.request(`/v1/videos/${id}`, { token: other.token })).status).toBe(200)
    // Kept now, and still only for its creator and admins.
    expect((await api.request(`/v1/videos/${id}`, { token: creator.token })).status).toBe(404)
  })
})

describe('playback sessions', () => {
  it('gives an anonymous viewer a device id and a playback token the edge accepts', async () => {
    const res = await api.request(`/v1/videos/${videoId}/play`, { method: 'POST' })
    expect(res.status).toBe(201)
    const play = (await res.json()) as Play
    expect(play.viewer_id).toMatch(/^d_/)
    expect(res.headers.get('set-cookie')).toContain(`cs_device=${play.viewer_id}`)
    const claims = await api.s.verifyPlaybackToken(play.token)
    expect(claims).toMatchObject({ sub: play.viewer_id, vid: videoId, cid: creator.userId, sid: play.session_id, dur: 60_000, ads: [] })
    expect(play.resume_position_ms).toBe(0)
  })

  it('binds a logged-in viewer to their user id and serves the resume position', async () => {
    await api.s.redis.set(keys.resume(videoId, viewer.userId), `${Date.now()}:31000`)
    const play = (await (await api.request(`/v1/videos/${videoId}/play`, { method: 'POST', token: viewer.token })).json()) as Play
    expect(play.viewer_id).toBe(viewer.userId)
    expect(play.resume_position_ms).toBe(31_000)
    const resume = await api.request(`/v1/videos/${videoId}/resume`, { token: viewer.token })
    expect(await resume.json()).toMatchObject({ video_id: videoId, viewer_id: viewer.userId, position_ms: 31_000 })
  })

  it('falls back to the positions written back to ClickHouse', async () => {
    await api.s.ch.insert({
      table: 'resume_positions',
      values: [{ viewer_id: 'd_AAAAAAAAAAAAAAAAAAAAAA', video_id: videoId, position_ms: 7000, updated_at: '2026-01-01 00:00:00.000' }],
      format: 'JSONEachRow',
    })
    const res = await api.request(`/v1/videos/${videoId}/resume`, { headers: { 'x-device-id': 'd_AAAAAAAAAAAAAAAAAAAAAA' } })
    expect(await res.json()).toMatchObject({ position_ms: 7000 })
  })

  it('refuses unknown videos, a bad access token, and resume without a viewer', async () => {
    expect((await api.request('/v1/videos/v_nope/play', { method: 'POST' })).status).toBe(404)
    expect((await api.request(`/v1/videos/${videoId}/play`, { method: 'POST', token: 'junk' })).status).toBe(401)
    expect((await api.request(`/v1/videos/${videoId}/resume`)).status).toBe(401)
    expect((await api.request(`/v1/videos/${videoId}/resume`, { headers: { 'x-device-id': 'not-a-device' } })).status).toBe(401)
  })

  it('rate limits session starts per IP with Retry-After', async () => {
    const limited = await startLimited()
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(await limited.json()).toMatchObject({ code: 'RATE_LIMITED' })
    // Another address is not affected.
    expect((await api.request(`/v1/videos/${videoId}/play`, { method: 'POST', ip: '10.9.9.9' })).status).toBe(201)
  })
})

async function startLimited(): Promise<Response> {
  let last: Response | undefined
  for (let i = 0; i < 11; i++) last = await api.request(`/v1/videos/${videoId}/play`, { method: 'POST', ip: '10.7.7.7' })
  return last!
}
