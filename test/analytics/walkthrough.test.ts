/**
 * The whole product through real HTTP on one port, as lib/main.ts serves it: a creator
 * logs in and registers a video, an admin adds an ad, anonymous and logged-in viewers
 * play and send events through the edge (a self-view, a repeat viewer and a retried
 * batch among them), settlement runs for the day, and the creator reads stats, top-5
 * and settlement in JSON and CSV with the exact expected numbers.
 */
import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAnalytics } from '../../analytics/app.ts'
import { today } from '../../analytics/http/dates.ts'
import { createEdge, type Edge } from '../../ingest/app.ts'
import { settle } from '../../jobs/settlement/job.ts'
import { createRootApp } from '../../lib/http.ts'
import { startTestServices, type TestServices } from '../harness/services.ts'
import { ADMIN_EMAIL } from './helpers.ts'

let s: TestServices
let edge: Edge
let analytics: ReturnType<typeof createAnalytics>
let server: ServerType
let base: string

beforeAll(async () => {
  s = await startTestServices({ FLUSH_INTERVAL_MS: '2', TRUST_PROXY: 'true' })
  edge = createEdge(s)
  analytics = createAnalytics(s, { env: { NODE_ENV: 'test', ADMIN_EMAILS: ADMIN_EMAIL } })
  const root = createRootApp(s, { apps: [edge.app, analytics.app], ready: () => edge.accepting })
  server = serve({ fetch: root.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve))
  await edge?.flush()
  await analytics?.close()
  await s?.stopAll()
})

/** A browser-ish client: its own IP, cookies kept between calls, an optional access token. */
function client(ip: string) {
  const jar = new Map<string, string>()
  let token: string | undefined
  const call = async (path: string, init: { method?: string; json?: unknown; bearer?: string } = {}) => {
    const headers: Record<string, string> = { 'x-forwarded-for': ip }
    if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const bearer = init.bearer ?? token
    if (bearer) headers.authorization = `Bearer ${bearer}`
    if (init.json !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, body: init.json === undefined ? undefined : JSON.stringify(init.json) })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const i = pair!.indexOf('=')
      jar.set(pair!.slice(0, i), pair!.slice(i + 1))
    }
    return res
  }
  return {
    call,
    async login(subject: string, email?: string) {
      const res = await call('/v1/auth/dev-login', { method: 'POST', json: { subject, email } })
      expect(res.status).toBe(200)
      token = ((await res.json()) as { access_token: string }).access_token
    },
    async becomeCreator() {
      const res = await call('/v1/me/creator', { method: 'POST' })
      token = ((await res.json()) as { access_token: string }).access_token
    },
    async json<T>(path: string, init: Parameters<typeof call>[1] = {}): Promise<T> {
      const res = await call(path, init)
      expect(res.status, `${init.method ?? 'GET'} ${path}: ${res.status}`).toBeLessThan(300)
      return (await res.json()) as T
    },
  }
}

type Play = { session_id: string; token: string; ads: { ad_id: string; slot: string }[]; viewer_id: string; resume_position_ms: number }
type Ingest = { accepted: number; duplicates: number; rejected: unknown[] }
const event = (type: string, ts: number, fields: Record<string, unknown> = {}) => ({ id: crypto.randomUUID(), type, ts, position_ms: 0, ...fields })

describe('walkthrough', () => {
  it('runs from login to settlement with the exact numbers', async () => {
    const day = today(s.settings.SETTLEMENT_TZ)
    // A creator logs in and registers a video; an admin adds an ad running today.
    const creator = client('10.1.0.10')
    await creator.login('walk-creator')
    await creator.becomeCreator()
    const video = await creator.json<{ video_id: string; creator_id: string }>('/v1/videos', { method: 'POST', json: { title: 'Walkthrough', duration_ms: 120_000 } })
    const admin = client('10.1.0.11')
    await admin.login('walk-admin', ADMIN_EMAIL)
    const ad = await admin.json<{ ad_id: string }>('/v1/ads', { method: 'POST', json: { advertiser: 'Acme', duration_ms: 15_000, contract_start: day, contract_end: day } })

    const watch = async (viewer: ReturnType<typeof client>, watchedMs: number) => {
      const play = await viewer.json<Play>(`/v1/videos/${video.video_id}/play`, { method: 'POST' })
      expect(play.ads).toEqual([{ ad_id: ad.ad_id, slot: 'pre_roll', advertiser: 'Acme', duration_ms: 15_000 }])
      const t0 = Date.now()
      const events = [event('play', t0), event('ad_impression', t0 + 1, { ad_id: ad.ad_id })]
      // Watch time is credited up to twice the server time since the session began plus a second,
      // so amounts under a second are credited in full however fast the test runs.
      if (watchedMs > 0) events.push(event('progress', t0 + 500, { watched_ms: watchedMs, position_ms: watchedMs }))
      const body = { events }
      const res = await viewer.json<Ingest>('/v1/events', { method: 'POST', json: body, bearer: play.token })
      expect(res).toMatchObject({ accepted: events.length, duplicates: 0, rejected: [] })
      return { play, body }
    }

    // An anonymous viewer watches 1 s; the same batch is retried; the viewer plays again at once.
    const anon = client('10.1.0.1')
    const first = await watch(anon, 1_000)
    const retried = await anon.json<Ingest>('/v1/events', { method: 'POST', json: first.body, bearer: first.play.token })
    expect(retried).toMatchObject({ accepted: 0, duplicates: 3 })
    const again = await watch(anon, 0)
    expect(again.play.viewer_id).toBe(first.play.viewer_id)
    // A logged-in viewer watches 0.8 s, another anonymous viewer only starts, the creator plays their own video.
    const member = client('10.1.0.2')
    await member.login('walk-viewer')
    await watch(member, 800)
    await watch(client('10.1.0.4'), 0)
    await watch(creator, 0)

    // Live count and resume position.
    const meta = await creator.json<{ views: number; views_source: string }>(`/v1/videos/${video.video_id}`)
    expect(meta).toMatchObject({ views: 3, views_source: 'live' })
    expect(await member.json(`/v1/videos/${video.video_id}/resume`)).toMatchObject({ position_ms: 800 })

    // Stats of the day, once the edge's loader has put the logged events into ClickHouse.
    await edge.loader.drain()
    const stats = await creator.json<{ rows: unknown[] }>(`/v1/videos/${video.video_id}/stats?grain=day&from=${day}&to=${day}`)
    expect(stats.rows).toEqual([
      // Views: the first anonymous session, the member, the second anonymous viewer; not the repeat, not the creator.
      { period: day, views: 3, watch_ms: 1_800, ad_impressions: 3, unique_viewers: 3, excluded_self_view: 1, excluded_duplicate_viewer: 1, excluded_duplicate_ip: 0 },
    ])

    // Top 5 of the day.
    const top = await creator.json<{ rows: unknown[] }>(`/v1/me/top?metric=views&grain=day&date=${day}&limit=5`)
    expect(top.rows).toEqual([{ rank: 1, video_id: video.video_id, creator_id: video.creator_id, title: 'Walkthrough', views: 3, watch_ms: 1_800 }])

    // The day ends; settlement runs for it (a day later on the job's clock: within the lateness window, so provisional).
    const result = await settle(s, { kind: 'days', from: day, to: day, trigger: 'test' }, { now: () => new Date(Date.now() + 86_400_000) })
    expect(result.days).toHaveLength(1)

    const totals = await creator.json<{ rows: unknown[] }>(`/v1/me/settlements?grain=day&from=${day}&to=${day}`)
    // 3 views at 1.0 KRW, 3 impressions at 10 KRW (first tier of the default rate card).
    expect(totals.rows).toEqual([{ period: day, views: 3, video_revenue_krw: 3, ad_impressions: 3, ad_revenue_krw: 30, total_krw: 33, status: 'provisional' }])
    const byAd = await creator.json<{ rows: unknown[] }>(`/v1/me/settlements/ads?grain=day&from=${day}&to=${day}`)
    expect(byAd.rows).toEqual([{ period: day, video_id: video.video_id, ad_id: ad.ad_id, impressions: 3, ad_revenue_krw: 30, status: 'provisional' }])
    const csv = await (await creator.call(`/v1/me/settlements/videos?grain=day&from=${day}&to=${day}&format=csv`)).text()
    expect(csv).toBe(
      'period,video_id,creator_id,views,video_revenue_krw,ad_impressions,ad_revenue_krw,total_krw,status\r\n' +
        `${day},${video.video_id},${video.creator_id},3,3,3,30,33,provisional\r\n`,
    )
    const statsCsv = await (await creator.call(`/v1/videos/${video.video_id}/stats?grain=day&from=${day}&to=${day}&format=csv`)).text()
    expect(statsCsv.split('\r\n')[1]).toBe(`${day},3,1800,3,3,1,1,0`)

    // Another creator sees none of it.
    const rival = client('10.1.0.20')
    await rival.login('walk-rival')
    await rival.becomeCreator()
    expect((await rival.call(`/v1/videos/${video.video_id}/stats?grain=day&from=${day}&to=${day}`)).status).toBe(404)
    expect((await rival.call(`/v1/videos/${video.video_id}/settlements?grain=day&from=${day}&to=${day}`)).status).toBe(404)
    expect(await rival.json(`/v1/me/settlements?grain=day&from=${day}&to=${day}`)).toMatchObject({ rows: [] })
  })
})
