import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { engineTurnsOf } from '../../lib/clickhouse.ts'
import { BACKGROUND_QUERY_PREFIX } from '../../lib/engine-turns.ts'
import { keys } from '../state/keys.ts'
import { startTestEdge, ev, type TestEdge } from '../../test/harness/edge.ts'
import { rows } from '../../test/harness/engines.ts'
import { dateIn, videoSnapshot } from '../../test/harness/snapshot.ts'

let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge()
})
afterAll(() => t.stop())

const uniq = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`
/** A session that started a minute ago, so the watch-time clamp has room. */
const since = (ms: number) => new Date(Date.now() - ms)

/** A metric's value as the edge's /metrics gives it (NaN when absent). */
const metricValue = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await t.s.metrics.registry.metrics())?.[1])

describe('a valid batch', () => {
  it('is stored in the raw table and counted in every aggregate', async () => {
    const video = uniq('v')
    const base = Date.now()
    const token = await t.token({ videoId: video, creatorId: 'c-1', viewerId: 'w-1', adIds: ['ad-1'] }, { now: since(60_000) })
    const res = await t.post(token, [
      ev('play', { ts: base - 50_000, position_ms: 0 }),
      ev('progress', { ts: base - 40_000, position_ms: 10_000, watched_ms: 10_000 }),
      ev('ad_impression', { ts: base - 39_000, position_ms: 10_000, ad_id: 'ad-1' }),
      ev('pause', { ts: base - 38_000, position_ms: 12_000 }),
      ev('seek', { ts: base - 37_000, position_ms: 30_000 }),
    ])
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ accepted: 5, duplicates: 0, rejected: [] })

    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.raw).toEqual([
      { outcome: 'counted', reason: '', type: 'ad_impression', n: 1 },
      { outcome: 'counted', reason: '', type: 'play', n: 1 },
      { outcome: 'counted', reason: '', type: 'progress', n: 1 },
      { outcome: 'stored', reason: '', type: 'pause', n: 1 },
      { outcome: 'stored', reason: '', type: 'seek', n: 1 },
    ])
    const day = dateIn(base - 50_000, 'Asia/Seoul')
    const expected = { views: 1, watch_ms: 10_000, ad_impressions: 1, self_view: 0, duplicate_viewer: 0, duplicate_ip: 0, unique_viewers: 1 }
    expect(snap.day).toEqual([{ period: day, ...expected }])
    expect(snap.week).toHaveLength(1)
    expect(snap.week[0]).toMatchObject(expected)
    expect(snap.month).toEqual([{ period: `${day.slice(0, 7)}-01`, ...expected }])
    expect(snap.adDay).toEqual([{ period: day, ad_id: 'ad-1', impressions: 1 }])
    expect(snap.adWeek).toEqual([{ period: snap.week[0]!.period, ad_id: 'ad-1', impressions: 1 }])
    expect(snap.adMonth).toEqual([{ period: `${day.slice(0, 7)}-01`, ad_id: 'ad-1', impressions: 1 }])
    // Resume position: the latest positional event, in Redis and written back to ClickHouse.
    expect(snap.resume).toEqual([{ viewer_id: 'w-1', position_ms: 30_000 }])
    expect(await t.s.redis.get(keys.resume(video, 'w-1'))).toBe(`${base - 37_000}:30000`)
    // Kept for RESUME_CACHE_HOURS after its last change; resume_positions in ClickHouse keeps it for good.
    const ttl = await t.s.redis.ttl(keys.resume(video, 'w-1'))
    expect(ttl).toBeGreaterThan(t.s.settings.RESUME_CACHE_HOURS * 3600 - 10)
    expect(ttl).toBeLessThanOrEqual(t.s.settings.RESUME_CACHE_HOURS * 3600)
    expect(await t.s.redis.get(keys.liveViews(video))).toBe('1')
  })

  it('keeps the week on Monday and the month on the 1st in the configured time zone', async () => {
    const video = uniq('v')
    const token = await t.token({ videoId: video }, { now: since(60_000) })
    const ts = Date.now() - 30_000
    expect((await t.post(token, [ev('play', { ts })])).status).toBe(200)
    const snap = await videoSnapshot(t.s.ch, video)
    const day = new Date(`${dateIn(ts, 'Asia/Seoul')}T00:00:00Z`)
    const monday = new Date(day.getTime() - ((day.getUTCDay() + 6) % 7) * 86_400_000).toISOString().slice(0, 10)
    expect(snap.week.map((w) => w.period)).toEqual([monday])
  })

  it('resets the resume position to 0 on end', async () => {
    const video = uniq('v')
    const token = await t.token({ videoId: video, viewerId: 'w-end' }, { now: since(60_000) })
    const base = Date.now()
    await t.post(token, [ev('play', { ts: base - 20_000, position_ms: 5_000 }), ev('end', { ts: base - 10_000, position_ms: 600_000 })])
    expect((await videoSnapshot(t.s.ch, video)).resume).toEqual([{ viewer_id: 'w-end', position_ms: 0 }])
    expect(await t.s.redis.get(keys.resume(video, 'w-end'))).toBe(`${base - 10_000}:0`)
  })
})

describe("a session's end", () => {
  it('drops its token from the verified tokens kept in memory; a retry of the last batch is verified again and counted once', async () => {
    const video = uniq('v')
    const verifier = t.s.verifyPlaybackToken
    const token = await t.token({ videoId: video, viewerId: 'w-gone' }, { now: since(60_000) })
    const base = Date.now()
    const kept = verifier.kept()
    expect((await t.post(token, [ev('play', { ts: base - 20_000, position_ms: 0 })])).status).toBe(200)
    expect(verifier.kept()).toBe(kept + 1)
    const last = [ev('progress', { ts: base - 15_000, position_ms: 5_000, watched_ms: 5_000 }), ev('end', { ts: base - 10_000, position_ms: 5_000 })]
    expect(await (await t.post(token, last)).json()).toEqual({ accepted: 2, duplicates: 0, rejected: [] })
    expect(verifier.kept()).toBe(kept)
    // the player missed the answer and sends its last batch again
    expect(await (await t.post(token, last)).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).day).toMatchObject([{ views: 1, watch_ms: 5_000 }])
  })

  it('is counted in the metrics of tokens kept', async () => {
    const metric = () => metricValue('cs_ingest_playback_tokens_kept')
    const token = await t.token({ videoId: uniq('v'), viewerId: 'w-metric' }, { now: since(60_000) })
    const before = await metric()
    expect((await t.post(token, [ev('play', { ts: Date.now() - 5_000 })])).status).toBe(200)
    expect(await metric()).toBe(before + 1)
    expect((await t.post(token, [ev('end', { ts: Date.now() - 1_000 })])).status).toBe(200)
    expect(await metric()).toBe(before)
  })
})

describe("the edge's loads", () => {
  it('are counted in the metrics when they wait for the reads under way in the embedded engine', async () => {
    const before = { loads: await metricValue('cs_clickhouse_embedded_loads_held'), seconds: await metricValue('cs_clickhouse_embedded_loads_held_seconds') }
    const slow = rows(t.s.ch, 'SELECT sleep(0.1) AS s')
    await vi.waitFor(() => expect(engineTurnsOf(t.s.ch)!.state.reads).toBeGreaterThan(0), { interval: 1, timeout: 5_000 })
    // A statement marked as a load, sent while the read is under way.
    await Promise.all([slow, t.s.ch.command({ query: 'SELECT 1', query_id: `${BACKGROUND_QUERY_PREFIX}${crypto.randomUUID()}` })])
    expect(await metricValue('cs_clickhouse_embedded_loads_held')).toBeGreaterThanOrEqual(before.loads + 1)
    expect(await metricValue('cs_clickhouse_embedded_loads_held_seconds')).toBeGreaterThan(before.seconds)
  })
})

describe('a retried batch', () => {
  it('is counted once in the raw table and every aggregate', async () => {
    const video = uniq('v')
    const base = Date.now()
    const token = await t.token({ videoId: video, viewerId: 'w-r', adIds: ['ad-r'] }, { now: since(60_000) })
    const batch = [
      ev('play', { ts: base - 50_000 }),
      ev('progress', { ts: base - 45_000, position_ms: 5_000, watched_ms: 5_000 }),
      ev('ad_impression', { ts: base - 44_000, ad_id: 'ad-r' }),
      ev('play', { id: 'not-a-uuid' }),
      ev('play', { ts: base + 3_600_000 }),
    ]
    const first = await t.post(token, batch)
    expect(await first.json()).toMatchObject({ accepted: 3, duplicates: 0 })
    const before = await videoSnapshot(t.s.ch, video)
    const views = await t.s.redis.get(keys.liveViews(video))

    const again = await t.post(token, batch)
    expect(again.status).toBe(200)
    const body = await again.json()
    expect(body.accepted).toBe(0)
    expect(body.duplicates).toBe(3)
    // A rejected event stays rejected with its reason when retried.
    expect(body.rejected).toEqual([
      { index: 3, reason: 'invalid_event', detail: expect.stringContaining('id') },
      { index: 4, reason: 'future_timestamp' },
    ])
    const after = await videoSnapshot(t.s.ch, video)
    expect(after.day).toEqual(before.day)
    expect(after.week).toEqual(before.week)
    expect(after.month).toEqual(before.month)
    expect(after.adDay).toEqual(before.adDay)
    expect(after.adWeek).toEqual(before.adWeek)
    expect(after.adMonth).toEqual(before.adMonth)
    expect(after.resume).toEqual(before.resume)
    // Only the invalid item, which has no usable id, is kept again (as rejected).
    expect(after.raw.filter((r) => r.outcome !== 'rejected')).toEqual(before.raw.filter((r) => r.outcome !== 'rejected'))
    expect(after.raw.find((r) => r.reason === 'future_timestamp')).toEqual(before.raw.find((r) => r.reason === 'future_timestamp'))
    expect(await t.s.redis.get(keys.liveViews(video))).toBe(views)
  })

  it('accepts the new events of a batch that repeats some old ones', async () => {
    const video = uniq('v')
    const token = await t.token({ videoId: video }, { now: since(60_000) })
    const old = ev('play', { ts: Date.now() - 30_000 })
    await t.post(token, [old])
    const res = await t.post(token, [old, ev('pause', { ts: Date.now() - 20_000 }), old])
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 2, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 2, ids: 2 }])
  })

  it("keeps its decisions until the session's token has expired (and the clock tolerance and a minute), not for EVENT_DEDUP_DAYS", async () => {
    const video = uniq('v')
    const sessionId = crypto.randomUUID()
    // Issued a minute ago for 20 minutes: 19 minutes left.
    const token = await t.token({ videoId: video, sessionId }, { now: since(60_000), ttlSeconds: 1_200 })
    expect((await t.post(token, [ev('play', { ts: Date.now() - 30_000 })])).status).toBe(200)
    const left = 19 * 60 + t.s.settings.CLOCK_TOLERANCE_SECONDS + 60
    // The request's mark is a field of the decisions hash, so it expires with the records naming it.
    const decisions = await t.s.redis.hgetall(keys.sessionEvents(video, sessionId))
    expect(Object.entries(decisions).filter(([field]) => field.startsWith('c:') && field.length !== 20).map(([, v]) => v)).toEqual(['1'])
    for (const key of [keys.sessionEvents(video, sessionId), keys.sessionState(video, sessionId)]) {
      const ttl = await t.s.redis.ttl(key)
      expect(ttl, key).toBeGreaterThan(left - 10)
      expect(ttl, key).toBeLessThanOrEqual(left)
    }
    expect(left).toBeLessThan(t.s.settings.EVENT_DEDUP_DAYS * 86_400)
  })

  it('keeps a session of more than 16 decisions in a hash table, not a listpack scanned for every id', async () => {
    const video = uniq('v')
    const sessionId = crypto.randomUUID()
    const token = await t.token({ videoId: video, sessionId }, { now: since(60_000) })
    const key = keys.sessionEvents(video, sessionId)
    expect((await t.post(token, Array.from({ length: 10 }, (_, i) => ev('progress', { ts: Date.now() - 30_000 + i, watched_ms: 1 })))).status).toBe(200)
    expect(await t.s.redis.object('ENCODING', key)).toBe('listpack')
    expect((await t.post(token, Array.from({ length: 10 }, (_, i) => ev('progress', { ts: Date.now() - 20_000 + i, watched_ms: 1 })))).status).toBe(200)
    expect(await t.s.redis.object('ENCODING', key)).toBe('hashtable')
  })

  it('counts an id repeated inside one batch once', async () => {
    const video = uniq('v')
    const token = await t.token({ videoId: video }, { now: since(60_000) })
    const e = ev('play', { ts: Date.now() - 30_000 })
    expect(await (await t.post(token, [e, e])).json()).toEqual({ accepted: 1, duplicates: 1, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).day[0]?.views).toBe(1)
  })
})

describe('rejected events', () => {
  it('are reported with index and reason, stored with it, and never counted', async () => {
    const video = uniq('v')
    const now = Date.now()
    const token = await t.token({ videoId: video, adIds: ['ad-ok'], durationMs: 60_000 }, { now: since(60_000) })
    const res = await t.post(token, [
      ev('play', { ts: now - 30_000 }),
      ev('play', { id: 'nope' }),
      ev('rewind', {}),
      ev('play', { position_ms: -1 }),
      ev('play', { watched_ms: 5 }),
      ev('progress', { ad_id: 'ad-ok', watched_ms: 5 }),
      ev('progress', {}),
      ev('play', { ts: now + 6 * 60_000 }),
      ev('play', { ts: now - 49 * 3_600_000 }),
      ev('ad_impression', { ts: now - 20_000, ad_id: 'ad-other' }),
      ev('pause', { ts: now - 10_000, position_ms: 60_001 }),
      'not an object',
      ev('play', { ts: 'yesterday' }),
      ev('play', { ts: '1969-07-20T20:17:40Z' }),
      ev('play', { ts: 0 }),
      ev('play', { ts: 99_999_999_999 }),
    ])
    expect(res.status).toBe(200)
    const body = await res.json()
    expect(body.accepted).toBe(1)
    expect(body.rejected.map((r: { index: number; reason: string }) => [r.index, r.reason])).toEqual([
      [1, 'invalid_event'],
      [2, 'invalid_event'],
      [3, 'invalid_event'],
      [4, 'invalid_event'],
      [5, 'invalid_event'],
      [6, 'invalid_event'],
      [7, 'future_timestamp'],
      [8, 'too_late'],
      [9, 'ad_not_served'],
      [10, 'position_out_of_range'],
      [11, 'invalid_event'],
      [12, 'invalid_event'],
      [13, 'too_late'],
      [14, 'too_late'],
      [15, 'too_late'],
    ])
    const details = Object.fromEntries(body.rejected.filter((r: { detail?: string }) => r.detail).map((r: { index: number; detail: string }) => [r.index, r.detail]))
    expect(details[1]).toMatch(/^id: /)
    expect(details[2]).toMatch(/type/)
    expect(details[3]).toMatch(/^position_ms: /)
    expect(details[4]).toBe('watched_ms: watched_ms is only allowed on progress events')
    expect(details[5]).toBe('ad_id: ad_id is only allowed on ad_impression events')
    expect(details[6]).toMatch(/^watched_ms: /)
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.raw.filter((r) => r.outcome === 'rejected').reduce((n, r) => n + Number(r.n), 0)).toBe(15)
    // Stored as sent, before 1970 as 1970-01-01: times that once failed the load and every load after it.
    const late = await rows<{ t: string }>(t.s.ch, `SELECT toString(toUnixTimestamp64Milli(event_time)) AS t FROM raw_events WHERE video_id = {v:String} AND reason = 'too_late' ORDER BY event_time`, { v: video })
    expect(late.map((r) => Number(r.t))).toEqual([0, 0, 99_999_999_999, now - 49 * 3_600_000])
    expect(snap.day.map((d) => d.views)).toEqual([1])
    expect(snap.adDay).toEqual([])
    const kept = await rows<{ payload: string }>(t.s.ch, `SELECT payload FROM raw_events WHERE video_id = {v:String} AND reason = 'invalid_event' AND type = 'rewind'`, { v: video })
    expect(JSON.parse(kept[0]!.payload)).toMatchObject({ type: 'rewind' })
  })
})

describe('the envelope', () => {
  const problem = async (res: Response, status: number, code: string) => {
    expect(res.status).toBe(status)
    expect(res.headers.get('content-type')).toBe('application/problem+json')
    const body = await res.json()
    expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String), request_id: expect.any(String) })
    // The request id is in the header too, as on every answer: a client can match a failure to its request.
    expect(res.headers.get('x-request-id')).toBe(body.request_id)
    return body
  }
  const raw = (body: BodyInit, headers: Record<string, string>) => t.app.request('/v1/events', { method: 'POST', body, headers, duplex: 'half' } as RequestInit, { ip: '10.0.0.9' })

  it('answers 400 with a reason for malformed bodies', async () => {
    const token = await t.token()
    const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    expect((await problem(await raw('{"events": [', h), 400, 'INVALID_BODY')).detail).toBe('the body is not valid JSON')
    expect((await problem(await raw('{}', h), 400, 'INVALID_BODY')).detail).toMatch(/^events: /)
    expect((await problem(await raw('{"events": {}}', h), 400, 'INVALID_BODY')).detail).toMatch(/^events: /)
    expect((await problem(await raw('{"events": []}', h), 400, 'INVALID_BODY')).detail).toBe('events: events must hold at least one event')
    const many = JSON.stringify({ events: Array.from({ length: 501 }, () => ev('pause')) })
    expect((await problem(await raw(many, h), 400, 'INVALID_BODY')).detail).toBe('events: at most 500 events per request')
  })

  it('answers 413 for a body over 1 MiB, also when it is chunked', async () => {
    const token = await t.token()
    const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const big = JSON.stringify({ events: [ev('pause', { pad: 'x'.repeat(1024 * 1024) })] })
    await problem(await raw(big, h), 413, 'PAYLOAD_TOO_LARGE')
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024))
    let sent = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"events":[{"pad":"'))
        if (sent > 32) return controller.close()
        sent++
        controller.enqueue(chunk)
      },
    })
    await problem(await raw(stream, h), 413, 'PAYLOAD_TOO_LARGE')
    expect(sent).toBeLessThan(33)
  })

  it('answers 415 for a wrong or missing content type', async () => {
    const token = await t.token()
    await problem(await raw('{"events":[]}', { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    await problem(await raw(new Blob(['{"events":[]}']), { authorization: `Bearer ${token}` }), 415, 'UNSUPPORTED_MEDIA_TYPE')
  })

  it('answers 401 without a valid token', async () => {
    await problem(await raw('{"events":[]}', { 'content-type': 'application/json' }), 401, 'UNAUTHORIZED')
    await problem(await raw('{"events":[]}', { 'content-type': 'application/json', authorization: 'Bearer abc.def.ghi' }), 401, 'INVALID_TOKEN')
    const expired = await t.token({}, { ttlSeconds: 60, now: new Date(Date.now() - 3_600_000) })
    expect((await problem(await raw('{"events":[]}', { 'content-type': 'application/json', authorization: `Bearer ${expired}` }), 401, 'INVALID_TOKEN')).detail).toMatch(/expired/)
  })
})

describe('time zone', () => {
  it('puts 14:59:59Z and 15:00:00Z on different Seoul days in every aggregate', async () => {
    const video = uniq('v')
    const now = Date.now()
    // The latest 15:00:00Z (Seoul midnight) that is in the past.
    const midnight = Math.floor((now - 15 * 3_600_000) / 86_400_000) * 86_400_000 + 15 * 3_600_000
    const before = midnight - 1_000
    const session = { now: new Date(before - 60_000), ttlSeconds: 3 * 86_400 }
    const token = await t.token({ videoId: video, adIds: ['ad-tz'] }, session)
    const token2 = await t.token({ videoId: video, viewerId: 'other', adIds: ['ad-tz'] }, session)
    expect((await t.post(token, [ev('play', { ts: before }), ev('ad_impression', { ts: before, ad_id: 'ad-tz' })])).status).toBe(200)
    expect((await t.post(token2, [ev('play', { ts: midnight }), ev('ad_impression', { ts: midnight, ad_id: 'ad-tz' })])).status).toBe(200)
    expect(new Date(before).toISOString().slice(0, 10)).toBe(new Date(midnight).toISOString().slice(0, 10)) // one UTC day
    const d1 = dateIn(before, 'Asia/Seoul')
    const d2 = dateIn(midnight, 'Asia/Seoul')
    expect(d1).not.toBe(d2)
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.day.map((d) => [d.period, d.views, d.ad_impressions])).toEqual([
      [d1, 1, 1],
      [d2, 1, 1],
    ])
    expect(snap.adDay.map((d) => d.period)).toEqual([d1, d2])
    const monthOf = (d: string) => `${d.slice(0, 7)}-01`
    const months = [...new Set([monthOf(d1), monthOf(d2)])]
    expect(snap.month.map((m) => m.period)).toEqual(months)
    expect(snap.adMonth.map((m) => m.period)).toEqual(months)
    const mondayOf = (d: string) => {
      const day = new Date(`${d}T00:00:00Z`)
      return new Date(day.getTime() - ((day.getUTCDay() + 6) % 7) * 86_400_000).toISOString().slice(0, 10)
    }
    expect(snap.week.map((w) => w.period)).toEqual([...new Set([mondayOf(d1), mondayOf(d2)])])
  })
})
