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

function randomJson(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 1 ? 6 : 8))
  if (k === 0) return null
  if (k === 1) return r() < 0.5
  if (k === 2) return Math.floor((r() - 0.5) * 2 ** (r() * 60))
  if (k === 3) return junk[Math.floor(r() * junk.length)]
  if (k === 4) return -r() * 1e300
  if (k === 5) return crypto.randomUUID()
  if (k === 6) return Array.from({ length: Math.floor(r() * 3) }, () => randomJson(r, depth + 1))
  const fields = ['title', 'duration_ms', 'advertiser', 'contract_start', 'contract_end', 'refresh_token', 'creator_id', 'views', 'email', 'subject']
  return Object.fromEntries(Array.from({ length: Math.floor(r() * 6) }, () => [fields[Math.floor(r() * fields.length)]!, randomJson(r, depth + 1)]))
}

it('answers random bodies on the write endpoints with a 2xx or a 4xx problem, never a 5xx', async () => {
  const r = rng(777)
  const targets: { path: () => string; token?: string; contentType?: string }[] = [
    { path: () => '/v1/videos', token: creator.token },
    { path: () => '/v1/ads', token: admin.token },
    { path: () => '/v1/auth/refresh' },
    { path: () => '/v1/auth/dev-login' },
    { path: () => `/v1/videos/${videoId}/play` },
    { path: () => '/clickhouse', token: admin.token, contentType: 'text/plain' },
  ]
  for (let i = 0; i < 240; i++) {
    const target = targets[i % targets.length]!
    const raw = r() < 0.2 ? JSON.stringify(randomJson(r)).slice(0, Math.floor(r() * 40)) : JSON.stringify(randomJson(r))
    const headers: Record<string, string> = { 'content-type': target.contentType ?? (r() < 0.9 ? 'application/json' : 'text/html') }
    if (target.token) headers.authorization = `Bearer ${target.token}`
    const res = await api.request(target.path(), { method: 'POST', headers, body: raw, ip: `10.8.${i % 250}.1` })
    expect(res.status, `${target.path()} ${raw}`).toBeLessThan(500)
    if (res.status >= 400) expect(res.headers.get('content-type'), `${target.path()} ${raw}`).toBe('application/problem+json')
    await res.arrayBuffer()
  }
})
