// The abuse rules of SPEC §5 at the edge: counting exclusions, watch-time clamps, rate limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keys } from '../state/keys.ts'
import { eventField } from '../state/decide.ts'
import { startTestEdge, ev, type TestEdge } from '../../test/harness/edge.ts'
import { rows } from '../../test/harness/engines.ts'
import { videoSnapshot } from '../../test/harness/snapshot.ts'

let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge()
})
afterAll(() => t.stop())

const uniq = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`
/** A session that started a minute ago, so the watch-time clamp has room. */
const since = (ms: number) => new Date(Date.now() - ms)

describe('counting rules', () => {
  it('excludes a self-view, a duplicate viewer, a fourth view from one IP and a repeated play', async () => {
    const video = uniq('v')
    const at = Date.now() - 30_000
    const play = async (viewerId: string, ip: string, n = 1) => {
      const token = await t.token({ videoId: video, creatorId: 'creator-x', viewerId }, { now: since(60_000) })
      const res = await t.post(token, Array.from({ length: n }, (_, i) => ev('play', { ts: at + i })), { ip })
      expect(res.status).toBe(200)
    }
    await play('creator-x', '10.1.0.1') // self_view
    await play('viewer-a', '10.1.0.2') // counted
    await play('viewer-a', '10.1.0.3') // duplicate_viewer (new session, same viewer)
    await play('viewer-b', '10.1.0.9') // counted
    await play('viewer-c', '10.1.0.9') // counted
    await play('viewer-d', '10.1.0.9') // counted: third from this IP
    await play('viewer-e', '10.1.0.9') // duplicate_ip
    await play('viewer-f', '10.1.0.4', 2) // counted, then repeat_play in the same session
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.day).toHaveLength(1)
    expect(snap.day[0]).toMatchObject({ views: 5, self_view: 1, duplicate_viewer: 1, duplicate_ip: 1, unique_viewers: 5 })
    expect(snap.raw.filter((r) => r.type === 'play')).toEqual([
      { outcome: 'counted', reason: '', type: 'play', n: 5 },
      { outcome: 'excluded', reason: 'duplicate_ip', type: 'play', n: 1 },
      { outcome: 'excluded', reason: 'duplicate_viewer', type: 'play', n: 1 },
      { outcome: 'excluded', reason: 'self_view', type: 'play', n: 1 },
      { outcome: 'stored', reason: 'repeat_play', type: 'play', n: 1 },
    ])
    expect(await t.s.redis.get(keys.liveViews(video))).toBe('5')
  })

  it('counts an ad impression once per session and ad, and not for the creator', async () => {
    const video = uniq('v')
    const at = Date.now() - 30_000
    const session = (viewerId: string) => t.token({ videoId: video, creatorId: 'creator-y', viewerId, adIds: ['ad-a', 'ad-b'] }, { now: since(60_000) })
    const v1 = await session('viewer-1')
    await t.post(v1, [ev('ad_impression', { ts: at, ad_id: 'ad-a' }), ev('ad_impression', { ts: at + 1, ad_id: 'ad-a' }), ev('ad_impression', { ts: at + 2, ad_id: 'ad-b' })])
    await t.post(await session('creator-y'), [ev('ad_impression', { ts: at, ad_id: 'ad-a' })])
    await t.post(await session('viewer-1'), [ev('ad_impression', { ts: at + 3, ad_id: 'ad-a' })]) // same viewer, new session, within the window
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.adDay.map((r) => [r.ad_id, r.impressions])).toEqual([
      ['ad-a', 1],
      ['ad-b', 1],
    ])
    expect(snap.raw.filter((r) => r.type === 'ad_impression').map((r) => [r.reason, r.n])).toEqual([
      ['', 2],
      ['duplicate_impression', 1],
      ['duplicate_viewer', 1],
      ['self_view', 1],
    ])
  })


  it('takes ad ids holding the script separators, a bar or a tab verbatim', async () => {
    const video = uniq('v')
    const odd = 'ad\x1e|\x1f\t"x"'
    const token = await t.token({ videoId: video, adIds: ['ad-plain', odd] }, { now: since(60_000) })
    const res = await t.post(token, [ev('ad_impression', { ts: Date.now() - 3_000, ad_id: odd }), ev('ad_impression', { ts: Date.now() - 2_000, ad_id: `${odd}\x1e` })])
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [{ index: 1, reason: 'ad_not_served' }] })
    expect((await videoSnapshot(t.s.ch, video)).adDay.map((r) => [r.ad_id, r.impressions])).toEqual([[odd, 1]])
  })
  it('clamps watch time to twice the time since the previous event plus a second, and to the duration', async () => {
    const video = uniq('v')
    const start = Date.now() - 600_000
    const token = await t.token({ videoId: video, durationMs: 30_000 }, { now: new Date(start) })
    const res = await t.post(token, [
      ev('play', { ts: start + 1_000 }),
      ev('progress', { ts: start + 6_000, position_ms: 5_000, watched_ms: 60_000 }), // 5 s since play: at most 11 s
      ev('progress', { ts: start + 8_000, position_ms: 7_000, watched_ms: 2_000 }), // honest: 2 s
      ev('seek', { ts: start + 9_000, position_ms: 20_000 }), // adds nothing
      ev('progress', { ts: start + 200_000, position_ms: 29_000, watched_ms: 100_000 }), // at most the 30 s duration
    ])
    expect(await res.json()).toMatchObject({ accepted: 5 })
    const credited = await rows<{ c: string }>(t.s.ch, `SELECT toString(credited_watch_ms) AS c FROM raw_events WHERE video_id = {v:String} AND type = 'progress' ORDER BY event_time`, { v: video })
    expect(credited.map((r) => Number(r.c))).toEqual([11_000, 2_000, 30_000])
    // Summed over the days: the session may cross midnight in the settlement time zone.
    expect((await videoSnapshot(t.s.ch, video)).day.reduce((n, d) => n + Number(d.watch_ms), 0)).toBe(43_000)
  })

  it('caps a session at twice the server time since it started, whatever the client clock says', async () => {
    const video = uniq('v')
    const token = await t.token({ videoId: video, durationMs: 3_600_000 }) // session starts now
    const now = Date.now()
    const res = await t.post(token, [
      ev('progress', { ts: now + 100_000, position_ms: 100_000, watched_ms: 100_000 }),
      ev('progress', { ts: now + 200_000, position_ms: 200_000, watched_ms: 100_000 }),
    ])
    expect(res.status).toBe(200)
    const total = (await videoSnapshot(t.s.ch, video)).day.reduce((n, d) => n + Number(d.watch_ms), 0)
    expect(total).toBeGreaterThanOrEqual(1_000)
    expect(total).toBeLessThan(10_000)
  })
  it('decides a long batch event by event: rejections past the ninth event and ids repeated in it', async () => {
    const video = uniq('v')
    const start = Date.now() - 600_000
    const token = await t.token({ videoId: video, durationMs: 3_600_000 }, { now: new Date(start) })
    const events = Array.from({ length: 30 }, (_, i) => ev(i === 0 ? 'play' : 'progress', { ts: start + 1_000 * (i + 1), position_ms: 1_000 * i, ...(i === 0 ? {} : { watched_ms: 1_000 }) }))
    const future = Date.now() + 3_600_000
    events[2] = { ...events[2], ts: future } // the script reads the reasons by index: 3, 12 and 26 (1-based)
    events[11] = { ...events[11], ts: future }
    events[25] = { ...events[25], ts: Date.now() - 40 * 86_400_000 }
    events[20] = { ...events[5] } // repeats a counted event
    events[28] = { ...events[11] } // repeats a rejected one
    const rejections = [[2, 'future_timestamp'], [11, 'future_timestamp'], [25, 'too_late']] as const
    const rejected = (more: (readonly [number, string])[] = []) => [...rejections, ...more].map(([index, reason]) => ({ index, reason }))
    expect(await (await t.post(token, events)).json()).toEqual({ accepted: 25, duplicates: 2, rejected: rejected() })
    const stored = await rows<{ id: string; outcome: string; reason: string; credited: string }>(
      t.s.ch,
      'SELECT toString(event_id) AS id, outcome, reason, toString(credited_watch_ms) AS credited FROM raw_events WHERE video_id = {v:String} ORDER BY event_time, id',
      { v: video },
    )
    expect(stored).toHaveLength(28)
    expect(new Set(stored.map((r) => r.id)).size).toBe(28)
    const byId = new Map(stored.map((r) => [r.id, r]))
    expect(byId.get(events[0]!.id as string)).toMatchObject({ outcome: 'counted', reason: '' })
    expect(byId.get(events[5]!.id as string)).toMatchObject({ outcome: 'counted', credited: '1000' })
    for (const [i, reason] of rejections) expect(byId.get(events[i]!.id as string)).toMatchObject({ outcome: 'rejected', reason })
    // Sent again, every id is one an earlier request decided: duplicates, or the rejection it got.
    expect(await (await t.post(token, events)).json()).toEqual({ accepted: 0, duplicates: 26, rejected: rejected([[28, 'future_timestamp']]) })
    expect(await rows(t.s.ch, 'SELECT count() AS n FROM raw_events WHERE video_id = {v:String}', { v: video })).toEqual([{ n: '28' }])
  })
})

describe('rate limits', () => {
  it('answers 429 with Retry-After past the per-token budget', async () => {
    const limited = { ...t.s, settings: { ...t.s.settings, RATE_LIMIT_TOKEN_PER_SECOND: 1, RATE_LIMIT_TOKEN_BURST: 2 } }
    const { createEdge } = await import('../app.ts')
    const edge = createEdge(limited)
    const token = await t.token({ videoId: uniq('v') })
    const send = (e = ev('pause')) =>
      edge.app.request('/v1/events', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ events: [e] }) }, { ip: '10.2.0.1' })
    expect((await send()).status).toBe(200)
    expect((await send()).status).toBe(200)
    const refused = ev('play')
    const third = await send(refused)
    expect(third.status).toBe(429)
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((await third.json()).code).toBe('RATE_LIMITED')
    // Refused before any decision: the event was not recorded, nor counted as a view.
    const claims = await t.s.verifyPlaybackToken(token)
    expect(await t.s.redis.hexists(keys.sessionEvents(claims.vid, claims.sid), eventField(refused.id as string))).toBe(0)
    expect(await t.s.redis.get(keys.liveViews(claims.vid))).toBeNull()
    // The bucket is kept in the session's state hash (two requests taken: none left, refilled at the second).
    const [left, at] = await t.s.redis.hmget(keys.sessionState(claims.vid, claims.sid), 't', 'at')
    expect(Number(left)).toBeLessThan(1)
    expect(Number(at)).toBeGreaterThan(Date.now() - 60_000)
    await edge.flush()
  })

  it('answers 429 past the per-IP budget across sessions', async () => {
    const limited = { ...t.s, settings: { ...t.s.settings, RATE_LIMIT_IP_PER_SECOND: 1, RATE_LIMIT_IP_BURST: 3 } }
    const { createEdge } = await import('../app.ts')
    const edge = createEdge(limited)
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) {
      const token = await t.token({ videoId: uniq('v') })
      const res = await edge.app.request('/v1/events', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ events: [ev('pause')] }) }, { ip: '10.3.0.1' })
      statuses.push(res.status)
    }
    expect(statuses).toEqual([200, 200, 200, 429])
    await edge.flush()
  })
})
