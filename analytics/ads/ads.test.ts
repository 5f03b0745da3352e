import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runAdAssignment } from '../../jobs/ads/assign.ts'
import { rows } from '../../test/harness/engines.ts'
import { ADMIN_EMAIL, startAnalyticsApi, type Session, type TestApi } from '../../test/analytics/helpers.ts'
import { addDays, today } from '../http/dates.ts'

let api: TestApi
let admin: Session
let creator: Session
let day: string

type Ad = { ad_id: string; advertiser: string; contract_start: string; contract_end: string; created_at: string; updated_at: string }
type Play = { token: string; ads: { ad_id: string; slot: string }[] }

const assignments = (videoId: string) =>
  rows<{ ad_id: string; slot: string; retired: number }>(
    api.s.ch,
    `SELECT ad_id, slot, retired_at IS NOT NULL AS retired FROM ad_assignments FINAL WHERE video_id = {v:String} ORDER BY ad_id, slot`,
    { v: videoId },
  )

async function newVideo(durationMs = 60_000): Promise<string> {
  const res = await api.request('/v1/videos', { method: 'POST', token: creator.token, json: { title: 'v', duration_ms: durationMs } })
  return ((await res.json()) as { video_id: string }).video_id
}

async function newAd(body: Record<string, unknown>): Promise<Ad> {
  const res = await api.request('/v1/ads', { method: 'POST', token: admin.token, json: { advertiser: 'Acme', duration_ms: 15_000, contract_start: day, contract_end: day, ...body } })
  expect(res.status).toBe(201)
  return (await res.json()) as Ad
}

beforeAll(async () => {
  api = await startAnalyticsApi()
  ;[admin, creator] = await Promise.all([api.login('admin', { email: ADMIN_EMAIL }), api.login('maker', { creator: true })])
  day = today(api.s.settings.SETTLEMENT_TZ)
})
afterAll(() => api?.stop())

describe('ads admin', () => {
  it('is for admins only', async () => {
    expect((await api.request('/v1/ads')).status).toBe(401)
    expect((await api.request('/v1/ads', { token: creator.token })).status).toBe(403)
    expect((await api.request('/v1/ads', { method: 'POST', token: creator.token, json: { advertiser: 'x', duration_ms: 1, contract_start: day, contract_end: day } })).status).toBe(403)
  })

  it('creates, reads, changes, lists and removes an ad', async () => {
    const ad = await newAd({ advertiser: 'Crud Co', ad_id: 'ad_chosen', deleted: 1 })
    expect(ad.ad_id).not.toBe('ad_chosen')
    expect((await api.request(`/v1/ads/${ad.ad_id}`, { token: admin.token })).status).toBe(200)
    const patched = await api.request(`/v1/ads/${ad.ad_id}`, { method: 'PATCH', token: admin.token, json: { advertiser: 'Crud Inc' } })
    expect(await patched.json()).toMatchObject({ advertiser: 'Crud Inc', contract_start: day })
    const list = (await (await api.request('/v1/ads', { token: admin.token })).json()) as { rows: Ad[] }
    expect(list.rows.map((a) => a.ad_id)).toContain(ad.ad_id)
    expect((await api.request(`/v1/ads/${ad.ad_id}`, { method: 'DELETE', token: admin.token })).status).toBe(204)
    expect((await api.request(`/v1/ads/${ad.ad_id}`, { token: admin.token })).status).toBe(404)
  })

  it('answers its times in RFC 3339 UTC, and a change keeps created_at and moves updated_at on', async () => {
    const instant = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
    const ad = await newAd({ advertiser: 'Clock Co' })
    expect(ad.created_at).toMatch(instant)
    expect(ad.updated_at).toBe(ad.created_at)
    expect(Math.abs(Date.parse(ad.created_at) - Date.now())).toBeLessThan(60_000)
    const read = (await (await api.request(`/v1/ads/${ad.ad_id}`, { token: admin.token })).json()) as Ad
    expect([read.created_at, read.updated_at]).toEqual([ad.created_at, ad.updated_at])
    const patched = (await (await api.request(`/v1/ads/${ad.ad_id}`, { method: 'PATCH', token: admin.token, json: { advertiser: 'Clock Inc' } })).json()) as Ad
    expect(patched.created_at).toBe(ad.created_at)
    expect(patched.updated_at).toMatch(instant)
    expect(Date.parse(patched.updated_at)).toBeGreaterThan(Date.parse(ad.updated_at))
    const listed = ((await (await api.request('/v1/ads', { token: admin.token })).json()) as { rows: Ad[] }).rows.find((a) => a.ad_id === ad.ad_id)
    expect(listed).toMatchObject({ advertiser: 'Clock Inc', created_at: ad.created_at, updated_at: patched.updated_at })
    const csv = (await (await api.request('/v1/ads?format=csv', { token: admin.token })).text()).split('\r\n')
    expect(csv.find((line) => line.startsWith(`${ad.ad_id},`))!.split(',').slice(-2)).toEqual([ad.created_at, patched.updated_at])
    // Gone again, so that the videos of the tests below are not assigned it.
    expect((await api.request(`/v1/ads/${ad.ad_id}`, { method: 'DELETE', token: admin.token })).status).toBe(204)
  })

  it('refuses a contract that ends before it starts', async () => {
    const res = await api.request('/v1/ads', { method: 'POST', token: admin.token, json: { advertiser: 'x', duration_ms: 1000, contract_start: day, contract_end: addDays(day, -1) } })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ code: 'INVALID_BODY' })
  })
})

describe('assignment', () => {
  it('assigns active ads to a new video (pre-roll; mid-roll too for long videos) and serves them on play', async () => {
    const ad = await newAd({ advertiser: 'Active' })
    const short = await newVideo(60_000)
    const long = await newVideo(20 * 60_000)
    expect((await assignments(short)).filter((a) => a.ad_id === ad.ad_id)).toEqual([{ ad_id: ad.ad_id, slot: 'pre_roll', retired: 0 }])
    expect((await assignments(long)).filter((a) => a.ad_id === ad.ad_id).map((a) => a.slot)).toEqual(['mid_roll', 'pre_roll'])
    const play = (await (await api.request(`/v1/videos/${long}/play`, { method: 'POST' })).json()) as Play
    expect(play.ads.map((a) => a.slot)).toEqual(['pre_roll', 'mid_roll'])
    const claims = await api.s.verifyPlaybackToken(play.token)
    expect(claims.ads).toEqual(play.ads.map((a) => a.ad_id))
    await api.request(`/v1/ads/${ad.ad_id}`, { method: 'DELETE', token: admin.token })
  })

  it('the daily job retires ended contracts, assigns newly active ones, and is idempotent', async () => {
    const video = await newVideo()
    const ending = await newAd({ advertiser: 'Ends today', contract_start: addDays(day, -3), contract_end: day })
    const starting = await newAd({ advertiser: 'Starts tomorrow', contract_start: addDays(day, 1), contract_end: addDays(day, 5) })
    expect((await assignments(video)).map((a) => a.ad_id)).toEqual([ending.ad_id])

    const tomorrow = addDays(day, 1)
    const first = await runAdAssignment(api.s, { date: tomorrow })
    expect(first).toMatchObject({ status: 'ok', retired: expect.any(Number), assigned: expect.any(Number) })
    expect(first.retired).toBeGreaterThanOrEqual(1)
    const after = await assignments(video)
    expect(after).toContainEqual({ ad_id: ending.ad_id, slot: 'pre_roll', retired: 1 })
    expect(after).toContainEqual({ ad_id: starting.ad_id, slot: 'pre_roll', retired: 0 })

    const again = await runAdAssignment(api.s, { date: tomorrow })
    expect(again).toEqual({ date: tomorrow, retired: 0, assigned: 0, status: 'ok' })
  })

  it('runs from the admin API and never twice at once', async () => {
    const res = await api.request('/v1/admin/jobs/ad-assignment/runs', { method: 'POST', token: admin.token, json: { date: day } })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ date: day, status: 'ok' })
    expect((await api.request('/v1/admin/jobs/ad-assignment/runs', { method: 'POST', token: creator.token, json: {} })).status).toBe(403)
    await api.s.redis.set('cs:{job:ad-assignment}:lock', 'someone-else', 'PX', 10_000)
    expect(await runAdAssignment(api.s, { date: day })).toMatchObject({ status: 'skipped' })
    await api.s.redis.del('cs:{job:ad-assignment}:lock')
  })
})
