import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { settle } from '../../jobs/settlement/job.ts'
import { insertEvents, type EventRow } from '../../test/analytics/events.ts'
import { ADMIN_EMAIL, startAnalyticsApi, type Session, type TestApi } from '../../test/analytics/helpers.ts'

let api: TestApi
let creator: Session
let other: Session
let admin: Session
let a: string
let c: string

async function video(s: Session): Promise<string> {
  const res = await api.request('/v1/videos', { method: 'POST', token: s.token, json: { title: 'S', duration_ms: 600_000 } })
  return ((await res.json()) as { video_id: string }).video_id
}

beforeAll(async () => {
  api = await startAnalyticsApi()
  ;[creator, other, admin] = await Promise.all([api.login('set-creator', { creator: true }), api.login('set-other', { creator: true }), api.login('set-admin', { email: ADMIN_EMAIL })])
  a = await video(creator)
  c = await video(other)
  const A = (f: Omit<EventRow, 'video_id' | 'creator_id'>): EventRow => ({ video_id: a, creator_id: creator.userId, ...f })
  await insertEvents(api.s.ch, [
    A({ type: 'play', viewer_id: 'v1', at: '2026-03-01 01:00:00' }),
    A({ type: 'play', viewer_id: 'v2', at: '2026-03-01 01:00:00' }),
    A({ type: 'play', viewer_id: 'v1', at: '2026-03-02 01:00:00' }),
    A({ type: 'play', viewer_id: 'v2', at: '2026-03-02 01:00:00' }),
    A({ type: 'play', viewer_id: 'v3', at: '2026-03-02 01:00:00' }),
    A({ type: 'ad_impression', viewer_id: 'v3', at: '2026-03-02 01:00:01', ad_id: 'ad_1' }),
    ...Array.from({ length: 5 }, (_, i): EventRow => ({ type: 'play', video_id: c, creator_id: other.userId, viewer_id: `w${i}`, at: '2026-03-02 02:00:00' })),
  ])
  // 1 March is past the 48 h lateness window at this clock (final); 2 March is not (provisional).
  const now = () => new Date('2026-03-04T03:00:00Z')
  await settle(api.s, { kind: 'days', from: '2026-03-01', to: '2026-03-01', finalize: true, trigger: 'test' }, { now })
  await settle(api.s, { kind: 'days', from: '2026-03-02', to: '2026-03-02', trigger: 'test' }, { now })
})
afterAll(() => api?.stop())

type Rows = { rows: Record<string, unknown>[] }
const get = async (path: string, token = creator.token) => {
  const res = await api.request(path, { token })
  return { status: res.status, body: (await res.json()) as Rows }
}

describe('creator settlement', () => {
  it('reports daily totals with their status', async () => {
    const { status, body } = await get('/v1/me/settlements?grain=day&from=2026-03-01&to=2026-03-02')
    expect(status).toBe(200)
    expect(body.rows).toEqual([
      { period: '2026-03-01', views: 2, video_revenue_krw: 2, ad_impressions: 0, ad_revenue_krw: 0, total_krw: 2, status: 'final' },
      { period: '2026-03-02', views: 3, video_revenue_krw: 3, ad_impressions: 1, ad_revenue_krw: 10, total_krw: 13, status: 'provisional' },
    ])
  })

  it('sums the days into a month that is provisional while any day is', async () => {
    const { body } = await get('/v1/me/settlements?grain=month&from=2026-03-01&to=2026-03-02')
    expect(body.rows).toEqual([{ period: '2026-03-01', views: 5, video_revenue_krw: 5, ad_impressions: 1, ad_revenue_krw: 10, total_krw: 15, status: 'provisional' }])
  })

  it('breaks down per video and per ad, only the caller’s', async () => {
    const videos = await get('/v1/me/settlements/videos?grain=week&from=2026-03-01&to=2026-03-02')
    expect(videos.body.rows.map((r) => [r.period, r.video_id, r.total_krw])).toEqual([
      ['2026-02-23', a, 2],
      ['2026-03-02', a, 13],
    ])
    const ads = await get('/v1/me/settlements/ads?grain=day&from=2026-03-02&to=2026-03-02')
    expect(ads.body.rows).toEqual([{ period: '2026-03-02', video_id: a, ad_id: 'ad_1', impressions: 1, ad_revenue_krw: 10, status: 'provisional' }])
    const theirs = await get('/v1/me/settlements?grain=day&from=2026-03-01&to=2026-03-02', other.token)
    expect(theirs.body.rows).toMatchObject([{ period: '2026-03-02', views: 5, total_krw: 5 }])
  })

  it('answers CSV with a header row', async () => {
    const res = await api.request('/v1/me/settlements?grain=day&from=2026-03-01&to=2026-03-02&format=csv', { token: creator.token })
    expect(res.headers.get('content-type')).toContain('text/csv')
    expect((await res.text()).split('\r\n')).toEqual([
      'period,views,video_revenue_krw,ad_impressions,ad_revenue_krw,total_krw,status',
      '2026-03-01,2,2,0,0,2,final',
      '2026-03-02,3,3,1,10,13,provisional',
      '',
    ])
  })
})

describe('one video’s settlement', () => {
  it('is shown to its creator and to admins', async () => {
    expect((await get(`/v1/videos/${a}/settlements?grain=day&from=2026-03-01&to=2026-03-02`)).body.rows).toHaveLength(2)
    expect((await get(`/v1/videos/${a}/settlements/ads?grain=day&from=2026-03-01&to=2026-03-02`)).body.rows).toHaveLength(1)
    expect((await get(`/v1/videos/${c}/settlements?grain=day&from=2026-03-01&to=2026-03-02`, admin.token)).status).toBe(200)
  })

  it('is a 404 for another creator’s video, on every settlement route', async () => {
    for (const path of [`/v1/videos/${c}/settlements`, `/v1/videos/${c}/settlements/ads`]) {
      const res = await get(`${path}?grain=day&from=2026-03-01&to=2026-03-02`)
      expect(res.status, path).toBe(404)
    }
  })
})

describe('guards', () => {
  it('needs a login, a valid range, and admin for the platform view', async () => {
    expect((await api.request('/v1/me/settlements?grain=day&from=2026-03-01&to=2026-03-02')).status).toBe(401)
    expect((await get('/v1/me/settlements?grain=day&from=2026-03-05&to=2026-03-01')).status).toBe(400)
    expect((await get('/v1/me/settlements?grain=day&from=2020-01-01&to=2026-03-01')).status).toBe(400)
    expect((await get('/v1/admin/settlements?grain=day&from=2026-03-01&to=2026-03-02')).status).toBe(403)
    const platform = await get(`/v1/admin/settlements?grain=day&from=2026-03-01&to=2026-03-02&creator_id=${other.userId}`, admin.token)
    expect(platform.body.rows.map((r) => r.video_id)).toEqual([c])
  })
})

describe('listings a page at a time', () => {
  type Page = Rows & { next: string | null }
  const page = async (path: string, token = admin.token) => {
    const res = await api.request(path, { token })
    return { status: res.status, body: (await res.json()) as Page }
  }
  const platform = '/v1/admin/settlements?grain=day&from=2026-03-01&to=2026-03-02'

  it('walks a listing page by page through `next`, to the rows of the whole listing in order', async () => {
    const whole = await page(platform)
    expect(whole.body.next).toBeNull()
    // By day in the lines' order: period, creator, video; each video's ad amounts beside its own.
    const second = [[creator.userId, a, 3, 1, 13], [other.userId, c, 5, 0, 5]].sort((x, y) => String(x[0]).localeCompare(String(y[0])))
    expect(whole.body.rows.map((r) => [r.period, r.creator_id, r.video_id, r.views, r.ad_impressions, r.total_krw])).toEqual([
      ['2026-03-01', creator.userId, a, 2, 0, 2],
      ...second.map((x) => ['2026-03-02', ...x]),
    ])
    const rows: Record<string, unknown>[] = []
    const cursors: (string | null)[] = []
    let after: string | null = null
    do {
      const p: { status: number; body: Page } = await page(`${platform}&limit=1${after ? `&after=${after}` : ''}`)
      expect(p.status).toBe(200)
      expect(p.body.rows).toHaveLength(1)
      rows.push(...p.body.rows)
      cursors.push((after = p.body.next))
    } while (after !== null && rows.length < 10)
    expect(cursors.map((x) => x !== null)).toEqual([true, true, false])
    expect(rows).toEqual(whole.body.rows)
    // Per ad: the only row is a whole page of one, with nothing after it.
    const ads = await page('/v1/me/settlements/ads?grain=day&from=2026-03-02&to=2026-03-02&limit=1', creator.token)
    expect(ads.body).toMatchObject({ rows: [{ video_id: a, ad_id: 'ad_1' }], next: null })
  })

  it('links the next page of a CSV answer, and refuses a cursor or a limit it did not give', async () => {
    const res = await api.request(`${platform}&limit=2&format=csv`, { token: admin.token })
    expect((await res.text()).trim().split('\r\n')).toHaveLength(3)
    const link = res.headers.get('link')
    expect(link).toMatch(/^<\/v1\/admin\/settlements\?.*after=[\w-]+.*>; rel="next"$/)
    const next = await api.request(link!.slice(1, link!.indexOf('>')), { token: admin.token })
    expect((await next.text()).trim().split('\r\n')).toHaveLength(2)
    expect(next.headers.get('link')).toBeNull()

    for (const bad of ['after=nope', `after=${Buffer.from('["2026-03-01"]').toString('base64url')}`, `after=${Buffer.from('["03/01/2026","x"]').toString('base64url')}`, 'limit=0', 'limit=100001']) {
      const r = await page(`${platform}&${bad}`)
      expect(r.status, bad).toBe(400)
    }
    expect(((await (await api.request(`${platform}&after=nope`, { token: admin.token })).json()) as { detail: string }).detail).toMatch(/cursor/)
  })
})

describe('admin: settlement runs and rate cards', () => {
  it('lists runs and refuses a rerun that breaks a settlement rule with the rule’s reason', async () => {
    const runs = await get('/v1/admin/jobs/settlement/runs?from=2026-03-01&to=2026-03-31', admin.token)
    expect(runs.body.rows.map((r) => [r.day, r.status])).toEqual([
      ['2026-03-02', 'provisional'],
      ['2026-03-01', 'final'],
    ])
    // Its times as the API answers every instant (written with toISOString, read back from ClickHouse's text).
    for (const r of runs.body.rows) {
      expect(r.started_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
      expect(Date.parse(String(r.finished_at))).toBeGreaterThanOrEqual(Date.parse(String(r.started_at)))
    }
    // By the real clock 2 March is long past the lateness window: it can only be finalized.
    const res = await api.request('/v1/admin/jobs/settlement/runs', { method: 'POST', token: admin.token, json: { from: '2026-03-02', to: '2026-03-02' } })
    expect(res.status).toBe(422)
    expect(((await res.json()) as { detail: string }).detail).toMatch(/window|finalize/i)
    const final = await api.request('/v1/admin/jobs/settlement/runs', { method: 'POST', token: admin.token, json: { from: '2026-03-01', to: '2026-03-01', finalize: true } })
    expect(final.status).toBe(409)
    expect((await api.request('/v1/admin/jobs/settlement/runs', { method: 'POST', token: creator.token, json: { from: '2026-03-02', to: '2026-03-02' } })).status).toBe(403)
  })

  it('lists and adds rate cards, refusing bad ones and ones that would change a final day', async () => {
    const cards = await get('/v1/admin/rate-cards', admin.token)
    expect(cards.body.rows[0]).toMatchObject({ version: 1, mode: 'graduated', tier_floors: [0, 100_000, 500_000, 1_000_000], video_rates_tenths: [10, 11, 13, 15] })
    const card = { effective_from: '2027-01-01', tier_floors: [0, 1000], video_rates_tenths: [12, 14], ad_rates_tenths: [110, 130] }
    const post = (body: unknown) => api.request('/v1/admin/rate-cards', { method: 'POST', token: admin.token, json: body })
    expect((await post({ ...card, video_rates_tenths: [12] })).status).toBe(400)
    expect((await post({ ...card, effective_from: '2026-03-01' })).status).toBe(400)
    const created = await post(card)
    expect(created.status).toBe(201)
    expect(await created.json()).toMatchObject({ version: 2, effective_from: '2027-01-01', mode: 'graduated' })
    expect((await api.request('/v1/admin/rate-cards', { token: creator.token })).status).toBe(403)
  })
})

describe('cached answers', () => {
  // Runs last in this file: it changes the settled days.
  it('show a rerun’s new amounts and a finalized day’s status on the next read', async () => {
    const path = '/v1/me/settlements?grain=day&from=2026-03-02&to=2026-03-02'
    expect((await get(path)).body.rows).toEqual([expect.objectContaining({ views: 3, total_krw: 13, status: 'provisional' })])
    expect((await get(path)).body.rows).toEqual([expect.objectContaining({ views: 3, total_krw: 13, status: 'provisional' })])
    await insertEvents(api.s.ch, [{ type: 'play', video_id: a, creator_id: creator.userId, viewer_id: 'v-late', at: '2026-03-02 03:00:00' }])
    await settle(api.s, { kind: 'days', from: '2026-03-02', to: '2026-03-02', trigger: 'test' }, { now: () => new Date('2026-03-04T03:00:00Z') })
    expect((await get(path)).body.rows).toEqual([expect.objectContaining({ views: 4, total_krw: 14, status: 'provisional' })])
    await settle(api.s, { kind: 'days', from: '2026-03-02', to: '2026-03-02', finalize: true, trigger: 'test' }, { now: () => new Date('2026-03-05T00:00:00Z') })
    expect((await get(path)).body.rows).toEqual([expect.objectContaining({ views: 4, total_krw: 14, status: 'final' })])
  })
})
