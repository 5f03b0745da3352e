import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { watchEmbeddedStatements } from '../../lib/clickhouse.ts'
import { ADMIN_EMAIL, startAnalyticsApi, type Session, type TestApi } from '../../test/analytics/helpers.ts'
import { activeAssignments, activeAssignmentsOf } from '../ads/store.ts'
import { today } from '../http/dates.ts'
import { storedPositions } from './lookups.ts'

let api: TestApi
let admin: Session
let creator: Session
let day: string
let short: string
let long: string

type Play = { resume_position_ms: number; ads: { ad_id: string; slot: string }[]; viewer_id: string }

async function newVideo(durationMs: number): Promise<string> {
  const res = await api.request('/v1/videos', { method: 'POST', token: creator.token, json: { title: 'v', duration_ms: durationMs } })
  return ((await res.json()) as { video_id: string }).video_id
}

/** A device id of the API's shape (d_ and 22 base64url characters) from a number. */
const device = (n: number) => `d_${String(n).padStart(22, '0')}`

/** The statements the engine ran during `fn` whose text holds `part`. */
async function statementsDuring(part: string, fn: () => Promise<unknown>): Promise<number> {
  let n = 0
  const stop = watchEmbeddedStatements(api.s.ch, (t) => {
    if (t.statement.includes(part)) n++
  })
  if (!stop) throw new Error('the test engine is not embedded')
  try {
    await fn()
  } finally {
    stop()
  }
  return n
}

beforeAll(async () => {
  api = await startAnalyticsApi({ PLAY_RATE_LIMIT_PER_MINUTE: '1000' })
  ;[admin, creator] = await Promise.all([api.login('admin', { email: ADMIN_EMAIL }), api.login('maker', { creator: true })])
  day = today(api.s.settings.SETTLEMENT_TZ)
  const res = await api.request('/v1/ads', { method: 'POST', token: admin.token, json: { advertiser: 'Acme', duration_ms: 15_000, contract_start: day, contract_end: day } })
  expect(res.status).toBe(201)
  // Registered after the ad: assigned a pre-roll, and the long one a mid-roll too.
  ;[short, long] = [await newVideo(60_000), await newVideo(20 * 60_000)]
})
afterAll(() => api?.stop())

describe('session starts read in batches', () => {
  it("reads several videos' active ads in one statement, each video's as read alone", async () => {
    const many = await activeAssignmentsOf(api.s.ch, [short, long, 'v_none'], day)
    expect(many.get(short)!.map((a) => a.slot)).toEqual(['pre_roll'])
    expect(many.get(long)!.map((a) => a.slot)).toEqual(['pre_roll', 'mid_roll'])
    expect(many.has('v_none')).toBe(false)
    for (const v of [short, long]) expect(await activeAssignments(api.s.ch, v, day)).toEqual(many.get(v))
  })

  it('reads several stored resume positions in one statement, the latest of each pair, none for a pair without one', async () => {
    await api.s.ch.insert({
      table: 'resume_positions',
      format: 'JSONEachRow',
      values: [
        { viewer_id: device(1), video_id: short, position_ms: 1000, updated_at: '2026-01-01 00:00:00.000' },
        { viewer_id: device(1), video_id: short, position_ms: 2000, updated_at: '2026-01-02 00:00:00.000' },
        { viewer_id: device(1), video_id: long, position_ms: 3000, updated_at: '2026-01-01 00:00:00.000' },
        { viewer_id: device(2), video_id: short, position_ms: 4000, updated_at: '2026-01-03 00:00:00.000' },
      ],
    })
    const found = await storedPositions(api.s.ch, [
      [device(1), short],
      [device(1), long],
      [device(2), short],
      [device(2), long],
    ])
    expect([...found.values()].map((p) => p.position_ms).sort()).toEqual([2000, 3000, 4000])
    expect(found.get(JSON.stringify([device(1), short]))).toEqual({ position_ms: 2000, at: Date.parse('2026-01-02T00:00:00Z') })
    expect(found.has(JSON.stringify([device(2), long]))).toBe(false)
  })

  it('gives concurrent starts of returning viewers their own positions from fewer statements than starts', async () => {
    const n = 12
    await api.s.ch.insert({
      table: 'resume_positions',
      format: 'JSONEachRow',
      values: Array.from({ length: n }, (_, i) => ({ viewer_id: device(100 + i), video_id: long, position_ms: 1000 * (i + 1), updated_at: '2026-01-01 00:00:00.000' })),
    })
    let plays: Play[] = []
    const statements = await statementsDuring('FROM resume_positions', async () => {
      plays = await Promise.all(
        Array.from({ length: n }, async (_, i) => (await (await api.request(`/v1/videos/${long}/play`, { method: 'POST', headers: { 'x-device-id': device(100 + i) } })).json()) as Play),
      )
    })
    expect(plays.map((p) => [p.viewer_id, p.resume_position_ms])).toEqual(Array.from({ length: n }, (_, i) => [device(100 + i), 1000 * (i + 1)]))
    expect(plays.every((p) => p.ads.map((a) => a.slot).join() === 'pre_roll,mid_roll')).toBe(true)
    expect(statements).toBeGreaterThan(0)
    expect(statements).toBeLessThan(n)
  })

  it('reads no resume position for a device id made for the start', async () => {
    const fresh = await statementsDuring('FROM resume_positions', async () => {
      const play = (await (await api.request(`/v1/videos/${short}/play`, { method: 'POST' })).json()) as Play
      expect(play.viewer_id).toMatch(/^d_/)
      expect(play.resume_position_ms).toBe(0)
    })
    expect(fresh).toBe(0)
    const returning = await statementsDuring('FROM resume_positions', () => api.request(`/v1/videos/${short}/play`, { method: 'POST', headers: { 'x-device-id': device(1) } }))
    expect(returning).toBe(1)
  })
})
