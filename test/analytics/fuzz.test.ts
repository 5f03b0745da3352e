import { afterAll, beforeAll, expect, it } from 'vitest'
import { ADMIN_EMAIL, startAnalyticsApi, type Session, type TestApi } from './helpers.ts'

let api: TestApi
let creator: Session
let admin: Session
let videoId: string
beforeAll(async () => {
  api = await startAnalyticsApi()
  creator = await api.login('fuzz-creator', { creator: true })
  admin = await api.login('fuzz-admin', { email: ADMIN_EMAIL })
  const res = await api.request('/v1/videos', { method: 'POST', token: creator.token, json: { title: 'Fuzz', duration_ms: 60_000 } })
  videoId = ((await res.json()) as { video_id: string }).video_id
})
afterAll(() => api.stop())

function rng(seed: number) {
  let s = seed >>> 0
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32)
}

const junk = ['', 'day', 'week', 'month', 'year', 'hour', '2026-11-21', '2026-02-30', '1970-01-01', '9999-12-31', '-1', '0', '5', '101', '1e9', 'NaN', 'null', "'; DROP TABLE raw_events; --", '%00', '💥', 'x'.repeat(500), 'views', 'watch_time', 'csv', 'json', 'xml']

it('answers random query strings on the read endpoints with 200 or a 4xx problem, never a 5xx', async () => {
  const r = rng(4242)
  const pick = () => junk[Math.floor(r() * junk.length)]!
  const paths = [
    () => `/v1/videos/${videoId}/stats`,
    () => `/v1/videos/${r() < 0.5 ? videoId : pick()}/settlements`,
    () => '/v1/me/settlements',
    () => '/v1/me/settlements/videos',
    () => '/v1/me/settlements/ads',
    () => '/v1/me/top',
    () => '/v1/top',
    () => `/v1/videos/${encodeURIComponent(pick())}`,
  ]
  const statuses = new Map<number, number>()
  for (let i = 0; i < 300; i++) {
    // Valid parameters with one or two of them broken (or none, now and then).
    const params = new URLSearchParams({ grain: 'day', from: '2026-11-01', to: '2026-11-21', date: '2026-11-20', metric: 'views', limit: '5' })
    const keys = ['grain', 'from', 'to', 'date', 'metric', 'limit', 'format']
    for (let k = Math.floor(r() * 3); k > 0; k--) params.set(keys[Math.floor(r() * keys.length)]!, pick())
    const path = `${paths[Math.floor(r() * paths.length)]!()}?${params}`
    const res = await api.request(path, { token: r() < 0.5 ? creator.token : admin.token })
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    expect(res.status, path).toBeLessThan(500)
    if (res.status >= 400) {
      expect(res.headers.get('content-type'), path).toBe('application/problem+json')
      expect(((await res.json()) as { detail: string }).detail, path).toEqual(expect.any(String))
    } else await res.arrayBuffer()
  }
  expect(statuses.get(200) ?? 0).toBeGreaterThan(0)
  expect(statuses.get(400) ?? 0).toBeGreaterThan(0)
})
