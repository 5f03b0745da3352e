import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { insertEvents, type EventRow } from '../../test/analytics/events.ts'
import { ADMIN_EMAIL, ANALYST_EMAIL, startAnalyticsApi, type Session, type TestApi } from '../../test/analytics/helpers.ts'

let api: TestApi
let creator: Session
let other: Session
let admin: Session
let analyst: Session
let a: string
let b: string
let c: string

async function video(s: Session, title: string): Promise<string> {
  const res = await api.request('/v1/videos', { method: 'POST', token: s.token, json: { title, duration_ms: 600_000 } })
  return ((await res.json()) as { video_id: string }).video_id
}

beforeAll(async () => {
  api = await startAnalyticsApi()
  ;[creator, other, admin, analyst] = await Promise.all([
    api.login('stats-creator', { creator: true }),
    api.login('stats-other', { creator: true }),
    api.login('stats-admin', { email: ADMIN_EMAIL }),
    api.login('stats-analyst', { email: ANALYST_EMAIL }),
  ])
  ;[a, b, c] = [await video(creator, 'Alpha'), await video(creator, 'Beta'), await video(other, 'Gamma')]
  const ev = (video_id: string, creator_id: string, fields: Omit<EventRow, 'video_id' | 'creator_id'>): EventRow => ({ video_id, creator_id, ...fields })
  const A = (f: Omit<EventRow, 'video_id' | 'creator_id'>) => ev(a, creator.userId, f)
  await insertEvents(api.s.ch, [
    // 23:30 on Sunday 1 March in Seoul (14:30 UTC): day 03-01, ISO week of 23 February.
    A({ type: 'play', viewer_id: 'v1', at: '2026-03-01 14:30:00' }),
    // 00:30 on Monday 2 March in Seoul, though still 1 March in UTC.
    A({ type: 'play', viewer_id: 'v4', at: '2026-03-01 15:30:00' }),
    A({ type: 'play', viewer_id: 'v1', at: '2026-03-02 01:00:00' }),
    A({ type: 'play', viewer_id: 'v2', at: '2026-03-02 01:00:00' }),
    A({ type: 'play', viewer_id: 'v3', at: '2026-03-02 01:00:00' }),
    A({ type: 'progress', viewer_id: 'v1', at: '2026-03-02 01:01:00', credited_watch_ms: 5000 }),
    A({ type: 'progress', viewer_id: 'v2', at: '2026-03-02 01:01:00', credited_watch_ms: 5000 }),
    A({ type: 'ad_impression', viewer_id: 'v2', at: '2026-03-02 01:00:05', ad_id: 'ad_1' }),
    A({ type: 'play', outcome: 'excluded', reason: 'self_view', viewer_id: creator.userId, at: '2026-03-02 02:00:00' }),
    A({ type: 'play', outcome: 'excluded', reason: 'duplicate_viewer', viewer_id: 'v1', at: '2026-03-02 02:00:00' }),
    A({ type: 'play', outcome: 'rejected', reason: 'too_late', viewer_id: 'v9', at: '2026-03-02 02:00:00' }),
    ev(b, creator.userId, { type: 'play', viewer_id: 'v1', at: '2026-03-03 01:00:00' }),
    ev(b, creator.userId, { type: 'progress', viewer_id: 'v1', at: '2026-03-03 01:10:00', credited_watch_ms: 60_000 }),
    ...Array.from({ length: 10 }, (_, i) => ev(c, other.userId, { type: 'play', viewer_id: `w${i}`, at: '2026-03-02 03:00:00' })),
  ])
})
afterAll(() => api?.stop())

type Stats = { rows: Record<string, number | string>[] }
const stats = async (id: string, query: string, token = creator.token) => api.request(`/v1/videos/${id}/stats?${query}`, { token })

describe('GET /v1/videos/{id}/stats', () => {
  it('reports each day in SETTLEMENT_TZ, with zeros for quiet days', async () => {
    const res = await stats(a, 'grain=day&from=2026-03-01&to=2026-03-03')
    expect(res.status).toBe(200)
    const body = (await res.json()) as Stats
    expect(body.rows).toEqual([
      { period: '2026-03-01', views: 1, watch_ms: 0, ad_impressions: 0, unique_viewers: 1, excluded_self_view: 0, excluded_duplicate_viewer: 0, excluded_duplicate_ip: 0 },
      { period: '2026-03-02', views: 4, watch_ms: 10_000, ad_impressions: 1, unique_viewers: 4, excluded_self_view: 1, excluded_duplicate_viewer: 1, excluded_duplicate_ip: 0 },
      { period: '2026-03-03', views: 0, watch_ms: 0, ad_impressions: 0, unique_viewers: 0, excluded_self_view: 0, excluded_duplicate_viewer: 0, excluded_duplicate_ip: 0 },
    ])
  })

  it('reports ISO weeks, months and years (a year merges the months’ unique viewers)', async () => {
    const weeks = (await (await stats(a, 'grain=week&from=2026-03-01&to=2026-03-03')).json()) as Stats
    expect(weeks.rows.map((r) => [r.period, r.views])).toEqual([
      ['2026-02-23', 1],
      ['2026-03-02', 4],
    ])
    const months = (await (await stats(a, 'grain=month&from=2026-03-01&to=2026-03-31')).json()) as Stats
    expect(months.rows).toMatchObject([{ period: '2026-03-01', views: 5, unique_viewers: 4, watch_ms: 10_000 }])
    const years = (await (await stats(a, 'grain=year&from=2025-06-01&to=2026-12-31')).json()) as Stats
    expect(years.rows).toMatchObject([
      { period: '2025-01-01', views: 0 },
      { period: '2026-01-01', views: 5, unique_viewers: 4 },
    ])
  })

  it('returns CSV with a header row', async () => {
    const res = await stats(a, 'grain=day&from=2026-03-02&to=2026-03-02&format=csv')
    expect(res.headers.get('content-type')).toContain('text/csv')
    expect((await res.text()).split('\r\n')).toEqual([
      'period,views,watch_ms,ad_impressions,unique_viewers,excluded_self_view,excluded_duplicate_viewer,excluded_duplicate_ip',
      '2026-03-02,4,10000,1,4,1,1,0',
      '',
    ])
  })

  it('validates and bounds the range', async () => {
    for (const q of ['grain=day&from=2026-03-03&to=2026-03-01', 'grain=day&from=2024-01-01&to=2026-03-01', 'grain=hour&from=2026-03-01&to=2026-03-01', 'from=2026-02-30&to=2026-03-01', 'grain=day', 'grain=day&from=2026-03-01&to=2026-03-02&format=xml']) {
      const res = await stats(a, q)
      expect(res.status, q).toBe(400)
      expect(await res.json()).toMatchObject({ code: 'INVALID_QUERY' })
    }
  })

  it('hides a video from everyone but its creator and admins', async () => {
    expect((await stats(a, 'grain=day&from=2026-03-01&to=2026-03-01', other.token)).status).toBe(404)
    expect((await stats(c, 'grain=day&from=2026-03-01&to=2026-03-01', creator.token)).status).toBe(404)
    expect((await stats(a, 'grain=day&from=2026-03-01&to=2026-03-01', admin.token)).status).toBe(200)
    expect((await api.request(`/v1/videos/${a}/stats?grain=day&from=2026-03-01&to=2026-03-01`)).status).toBe(401)
  })

  it('hands back every request’s place among those under way, answered or refused, so that no batch waits for it', async () => {
    const underWay = async () => (await api.s.metrics.registry.getSingleMetric('cs_stats_requests_under_way')!.get()).values[0]!.value
    const answers = Promise.all([
      stats(a, 'grain=day&from=2026-03-01&to=2026-03-03'),
      stats(b, 'grain=month&from=2026-03-01&to=2026-03-31'),
      stats(a, 'grain=day&from=2026-03-01&to=2026-03-01', other.token),
      stats(a, 'grain=day&from=2026-03-09&to=2026-03-01'),
      api.request(`/v1/videos/${a}/stats?grain=day&from=2026-03-01&to=2026-03-01`),
    ])
    // Taken as each request starts: at least the first is under way before any is answered.
    expect(await underWay()).toBeGreaterThan(0)
    expect((await answers).map((r) => r.status)).toEqual([200, 200, 404, 400, 401])
    expect(await underWay()).toBe(0)
  })
})

type Top = { period: string; rows: { rank: number; video_id: string; views: number; watch_ms: number }[] }

describe('top videos', () => {
  it('ranks the caller’s videos by views or watch time for a period', async () => {
    const day = (await (await api.request('/v1/me/top?metric=views&grain=day&date=2026-03-02', { token: creator.token })).json()) as Top
    expect(day.period).toBe('2026-03-02')
    expect(day.rows).toMatchObject([{ rank: 1, video_id: a, views: 4, title: 'Alpha' }])
    const week = (await (await api.request('/v1/me/top?metric=watch_time&grain=week&date=2026-03-04', { token: creator.token })).json()) as Top
    expect(week.period).toBe('2026-03-02')
    expect(week.rows.map((r) => [r.video_id, r.watch_ms])).toEqual([
      [b, 60_000],
      [a, 10_000],
    ])
    const one = (await (await api.request('/v1/me/top?metric=watch_time&grain=month&date=2026-03-04&limit=1', { token: creator.token })).json()) as Top
    expect(one.rows).toHaveLength(1)
  })

  it('never shows another creator’s videos in /v1/me/top', async () => {
    const mine = (await (await api.request('/v1/me/top?grain=day&date=2026-03-02', { token: other.token })).json()) as Top
    expect(mine.rows.map((r) => r.video_id)).toEqual([c])
  })

  it('ranks the whole platform in /v1/top for admins and analysts only, also as CSV', async () => {
    const all = (await (await api.request('/v1/top?grain=day&date=2026-03-02', { token: analyst.token })).json()) as Top
    expect(all.rows.map((r) => [r.video_id, r.views])).toEqual([
      [c, 10],
      [a, 4],
    ])
    expect((await api.request('/v1/top?grain=day&date=2026-03-02', { token: creator.token })).status).toBe(403)
    const csv = await (await api.request('/v1/top?grain=day&date=2026-03-02&format=csv', { token: admin.token })).text()
    expect(csv.split('\r\n')[0]).toBe('rank,video_id,creator_id,title,views,watch_ms')
    expect(csv.split('\r\n')[1]).toBe(`1,${c},${other.userId},Gamma,10,0`)
  })

  it('sums a video’s rows still spread over unmerged parts, and titles the latest version of each video', async () => {
    // Merges stopped: each insert stays its own part, so the ranking must merge them as it reads.
    await api.s.ch.command({ query: 'SYSTEM STOP MERGES video_stats_per_day' })
    try {
      for (const viewer of ['p1', 'p2', 'p3']) await insertEvents(api.s.ch, [{ type: 'play', video_id: a, creator_id: creator.userId, viewer_id: viewer, at: '2026-03-05 03:00:00' }])
      await insertEvents(
        api.s.ch,
        ['q1', 'q2'].map((viewer) => ({ type: 'play', video_id: b, creator_id: creator.userId, viewer_id: viewer, at: '2026-03-05 03:00:00' })),
      )
      // Unmerged: a's day is still three rows, one per insert.
      const unmerged = await api.s.ch.query({ query: "SELECT count() AS n FROM video_stats_per_day WHERE day = '2026-03-05' AND video_id = {v:String}", query_params: { v: a }, format: 'JSONEachRow' })
      expect(await unmerged.json()).toEqual([{ n: '3' }])
      // A later version of b's row in videos: its title is the one shown.
      await api.s.ch.insert({ table: 'videos', values: [{ video_id: b, creator_id: creator.userId, title: 'Beta (renamed)', duration_ms: 600_000, created_at: '2026-03-01 00:00:00', updated_at: '2030-01-01 00:00:00', deleted: 0 }], format: 'JSONEachRow' })

      const top = (await (await api.request('/v1/me/top?metric=views&grain=day&date=2026-03-05', { token: creator.token })).json()) as Top
      expect(top.rows).toEqual([
        { rank: 1, video_id: a, creator_id: creator.userId, title: 'Alpha', views: 3, watch_ms: 0 },
        { rank: 2, video_id: b, creator_id: creator.userId, title: 'Beta (renamed)', views: 2, watch_ms: 0 },
      ])
    } finally {
      await api.s.ch.command({ query: 'SYSTEM START MERGES video_stats_per_day' })
    }
  })

  it('validates metric, grain and limit', async () => {
    for (const q of ['metric=likes', 'grain=year', 'limit=0', 'limit=101', 'date=yesterday']) {
      expect((await api.request(`/v1/me/top?${q}`, { token: creator.token })).status, q).toBe(400)
    }
  })
})
