import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPrivateRedis } from '../../lib/redis-server.ts'
import { createRules, decisionRecord, eventField, newRequestId, type Decided } from '../state/decide.ts'
import { keys } from '../state/keys.ts'
import { startTestEdge, ev, type TestEdge } from '../../test/harness/edge.ts'
import { FAILING_VIDEO_PREFIX, videoSnapshot, withFailingView } from '../../test/harness/snapshot.ts'
import { join } from 'node:path'
import { createWal } from '../wal.ts'
import { encodeRows, insertRawEvents, rowText, toRow } from './rows.ts'
import { eventSchema } from './schema.ts'

let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge({ INFLIGHT_LEASE_MS: '5000' })
})
afterAll(() => t.stop())

const uniq = () => `v-${crypto.randomUUID().slice(0, 8)}`
const session = (videoId: string, viewerId = 'w') => t.token({ videoId, viewerId }, { now: new Date(Date.now() - 60_000) })
const claimsOf = (token: string) => t.s.verifyPlaybackToken(token)
/** Decisions of an earlier attempt, made straight through the rules (never rate limited here). */
async function decideDirectly(...args: Parameters<ReturnType<typeof createRules>['decide']>): Promise<Decided[]> {
  const out = await createRules(t.s.redis, t.s.settings).decide(...args)
  if (!Array.isArray(out)) throw new Error('unexpectedly rate limited')
  return out
}

/** A new session whose first batch, one play, was accepted. */
async function playedOnce() {
  const video = uniq()
  const token = await session(video)
  const claims = await claimsOf(token)
  const e = ev('play', { ts: Date.now() - 10_000 })
  expect(await (await t.post(token, [e])).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] })
  return { video, token, claims, e }
}
/** A play event as the rules take it. */
const input = (e: Record<string, unknown>) => ({ id: e.id as string, type: 'play' as const, ts: e.ts as number, positionMs: 0, watchedMs: 0, adId: '', preRejected: '' })

describe('when ClickHouse fails', () => {
  it('acknowledges from the write-ahead log, answers a retry with duplicates, and loads the batch once when ClickHouse is back', async () => {
    const video = uniq()
    const token = await session(video)
    const batch = [ev('play', { ts: Date.now() - 30_000 }), ev('progress', { ts: Date.now() - 29_000, watched_ms: 1_000, position_ms: 1_000 })]
    const failuresBefore = (await t.s.metrics.flushFailures.get()).values[0]?.value ?? 0
    await t.s.ch.command({ query: 'DETACH TABLE raw_events' })
    try {
      const res = await t.post(token, batch, { load: false })
      expect(await res.json()).toEqual({ accepted: 2, duplicates: 0, rejected: [] })
      // The loader tried and failed; the rows wait in the log.
      while (((await t.s.metrics.flushFailures.get()).values[0]?.value ?? 0) === failuresBefore) await new Promise((r) => setImmediate(r))
      const retry = await t.post(token, batch, { load: false })
      expect(await retry.json()).toEqual({ accepted: 0, duplicates: 2, rejected: [] })
    } finally {
      await t.s.ch.command({ query: 'ATTACH TABLE raw_events' })
    }
    await t.edge.loader.drain()
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 2, ids: 2 }])
    expect(snap.day[0]).toMatchObject({ views: 1, watch_ms: 1_000 })
    expect(await (await t.post(token, batch)).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [] })
  })
})

describe("a request's mark (its events reached ClickHouse)", () => {
  it("is kept in the session's decisions hash, and a retry right after is answered from it", async () => {
    const { video, token, claims, e } = await playedOnce()
    const hash = await t.s.redis.hgetall(keys.sessionEvents(video, claims.sid))
    const [requestId] = (hash[eventField(e.id as string)] ?? '').split('|')
    expect(hash[`c:${requestId}`]).toBe('1')
    expect(await t.s.redis.keys(`${keys.legacyMark(video, '')}*`)).toEqual([])
    // Within the request's lease only the mark tells a stored request from one still in flight (503).
    expect(await (await t.post(token, [e])).json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
  })

  it("is not written once the session's decisions have expired, so their expiry stays visible to the next batch", async () => {
    const video = uniq()
    const claims = await claimsOf(await session(video))
    const rules = createRules(t.s.redis, t.s.settings)
    await rules.markRequests([{ videoId: video, sessionId: claims.sid, requestId: newRequestId() }], true)
    expect(await t.s.redis.exists(keys.sessionEvents(video, claims.sid))).toBe(0)
  })

  it('is still read from a key of its own, as edges wrote it before 3 December', async () => {
    const video = uniq()
    const token = await session(video)
    const claims = await claimsOf(token)
    const e = ev('play', { ts: Date.now() - 10_000 })
    const before = newRequestId() // within its lease: without its mark a retry waits (503)
    const [decided] = await decideDirectly(before, claims, '10.0.0.1', Date.now(), [input(e)])
    if (decided?.kind !== 'new') throw new Error('expected a new decision')
    const row = toRow({ claims, ip: '10.0.0.1', now: Date.now() }, { kind: 'event', event: eventSchema.parse(e), decision: decided.decision })
    await t.s.ch.insert({ table: 'raw_events', values: [row], format: 'JSONEachRow' })
    await t.s.redis.set(keys.legacyMark(video, before), '1', 'EX', 600)
    const res = await t.post(token, [e])
    expect(await res.json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 1, ids: 1 }])
  })
})

describe('a retry of events an earlier attempt decided but did not finish', () => {
  it('waits (503) while the earlier attempt may still store them', async () => {
    const video = uniq()
    const token = await session(video)
    const claims = await claimsOf(token)
    const e = ev('play', { ts: Date.now() - 10_000 })
    // Another edge decided this event a moment ago and is still writing it.
    await decideDirectly(newRequestId(), claims, '10.0.0.1', Date.now(), [
      { id: e.id as string, type: 'play', ts: e.ts as number, positionMs: 0, watchedMs: 0, adId: '', preRejected: '' },
    ])
    const res = await t.post(token, [e])
    expect(res.status).toBe(503)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 0, ids: 0 }])
  })

  it('stores them once with the recorded decision after the edge that decided them died', async () => {
    const video = uniq()
    const token = await session(video)
    const claims = await claimsOf(token)
    const e = ev('play', { ts: Date.now() - 10_000 })
    const crashed = newRequestId(Date.now() - 60_000) // its lease has run out
    await decideDirectly(crashed, claims, '10.0.0.1', Date.now(), [
      { id: e.id as string, type: 'play', ts: e.ts as number, positionMs: 0, watchedMs: 0, adId: '', preRejected: '' },
    ])
    const res = await t.post(token, [e])
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] })
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 1, ids: 1 }])
    expect(snap.day[0]?.views).toBe(1)
    expect(await (await t.post(token, [e])).json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
  })

  it('does not store them again when the dead edge had stored them but not marked them, and answers the next retry at once', async () => {
    const video = uniq()
    const token = await session(video)
    const claims = await claimsOf(token)
    const e = ev('play', { ts: Date.now() - 10_000 })
    const crashed = newRequestId(Date.now() - 60_000)
    const [decided] = await decideDirectly(crashed, claims, '10.0.0.1', Date.now(), [
      { id: e.id as string, type: 'play', ts: e.ts as number, positionMs: 0, watchedMs: 0, adId: '', preRejected: '' },
    ])
    if (decided?.kind !== 'new') throw new Error('expected a new decision')
    // The dead edge's insert reached ClickHouse; its process died before marking the request.
    const row = toRow({ claims, ip: '10.0.0.1', now: Date.now() }, { kind: 'event', event: eventSchema.parse(e), decision: decided.decision })
    await t.s.ch.insert({ table: 'raw_events', values: [row], format: 'JSONEachRow' })
    const res = await t.post(token, [e])
    expect(await res.json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 1, ids: 1 }])
    expect(snap.day[0]?.views).toBe(1)
    // The takeover's request, which stored nothing, is marked: the next retry is not told to wait out its lease.
    expect(await (await t.post(token, [e])).json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
  })

  it('lets exactly one of two concurrent retries take the events over', async () => {
    const video = uniq()
    const token = await session(video)
    const claims = await claimsOf(token)
    const batch = Array.from({ length: 20 }, (_, i) => ev('pause', { ts: Date.now() - 10_000 + i }))
    await decideDirectly(newRequestId(Date.now() - 60_000), claims, '10.0.0.1', Date.now(), batch.map((e) => ({
      id: e.id as string, type: 'pause' as const, ts: e.ts as number, positionMs: 0, watchedMs: 0, adId: '', preRejected: '',
    })))
    const [a, b] = await Promise.all([t.post(token, batch), t.post(token, batch)])
    expect([a.status, b.status].sort()).toEqual([200, 503])
    const ok = a.status === 200 ? a : b
    expect(await ok.json()).toEqual({ accepted: 20, duplicates: 0, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 20, ids: 20 }])
  })
})

describe('an event id in capitals (as Swift writes a UUID)', () => {
  it('is the same event as in lowercase, and a takeover finds it in raw_events (which keeps it lowercase)', async () => {
    const video = uniq()
    const token = await session(video)
    const claims = await claimsOf(token)
    const e = ev('play', { id: crypto.randomUUID().toUpperCase(), ts: Date.now() - 10_000 })
    // The edge that decided it stored it, and died before marking its request.
    const [decided] = await decideDirectly(newRequestId(Date.now() - 60_000), claims, '10.0.0.1', Date.now(), [input(e)])
    if (decided?.kind !== 'new') throw new Error('expected a new decision')
    const row = toRow({ claims, ip: '10.0.0.1', now: Date.now() }, { kind: 'event', event: eventSchema.parse(e), decision: decided.decision })
    await t.s.ch.insert({ table: 'raw_events', values: [row], format: 'JSONEachRow' })
    expect(await (await t.post(token, [e])).json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
    expect(await (await t.post(token, [{ ...e, id: (e.id as string).toLowerCase() }])).json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 1, ids: 1 }])
  })
})

describe('decisions recorded until 5 December (the id as text, the outcome a word)', () => {
  /** What an edge left until 5 December: a session that played, its decision recorded under the id as the client sent it. */
  async function legacySession(id: string, opts: { marked: boolean }) {
    const video = uniq()
    const token = await session(video)
    const claims = await claimsOf(token)
    const e = ev('play', { id, ts: Date.now() - 20_000 })
    const requestId = `${(Date.now() - 60_000).toString(36)}-${crypto.randomUUID().slice(0, 13)}` // 22 characters, its lease run out
    await t.s.redis.hset(keys.sessionState(video, claims.sid), 'last', e.ts as number, 'credited', 0, 'viewed', '1', 'seen', Date.now() - 20_000)
    await t.s.redis.hset(keys.sessionEvents(video, claims.sid), id, `${requestId}|counted||0`, ...(opts.marked ? [`c:${requestId}`, '1'] : []))
    await t.s.redis.expire(keys.sessionEvents(video, claims.sid), 600)
    if (opts.marked) {
      const row = toRow({ claims, ip: '10.0.0.1', now: Date.now() }, { kind: 'event', event: eventSchema.parse(e), decision: { outcome: 'counted', reason: '', credited: 0 } })
      await t.s.ch.insert({ table: 'raw_events', values: [row], format: 'JSONEachRow' })
    }
    return { video, token, claims, e, requestId }
  }

  it.each([['lowercase', crypto.randomUUID()], ['capitals', crypto.randomUUID().toUpperCase()]])('are found for a retry of an id sent in %s, beside new events of the batch', async (_, id) => {
    const { video, token, claims, e } = await legacySession(id, { marked: true })
    const next = ev('pause', { ts: Date.now() - 5_000 })
    expect(await (await t.post(token, [e, next])).json()).toEqual({ accepted: 1, duplicates: 1, rejected: [] })
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 2, ids: 2 }])
    expect(snap.day[0]?.views).toBe(1)
    // The hash still holds the old record: the session stays one whose ids are looked for as text too.
    expect(await t.s.redis.hget(keys.sessionState(video, claims.sid), 'z')).toBeNull()
    expect(await (await t.post(token, [e, next])).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [] })
  })

  it('are taken over when their request died, the record compared whatever the form of its outcome', async () => {
    const id = crypto.randomUUID()
    const { video, claims, requestId } = await legacySession(id, { marked: false })
    const rules = createRules(t.s.redis, t.s.settings)
    const replay = newRequestId()
    // ingest/repair.ts rebuilds the record from its log, with the outcome as a letter.
    const rebuilt = decisionRecord(requestId, { outcome: 'counted', reason: '', credited: 0 })
    expect(await rules.claim(video, claims.sid, replay, [{ id, record: rebuilt }])).toEqual(['mine'])
    expect(await t.s.redis.hget(keys.sessionEvents(video, claims.sid), id)).toBe(`${replay}|counted||0`)
    expect(await rules.claim(video, claims.sid, newRequestId(), [{ id, record: rebuilt }])).toEqual(['taken'])
  })

  it('are not looked for in a hash made since, which holds every id by its field', async () => {
    const { video, claims, e } = await playedOnce()
    expect(await t.s.redis.hget(keys.sessionState(video, claims.sid), 'z')).toBe('1')
    const record = await t.s.redis.hget(keys.sessionEvents(video, claims.sid), eventField(e.id as string))
    expect(record).toMatch(/^[0-9a-z]{8}-[0-9a-z]{5}\|c\|\|0$/)
    // The event's field and its request's mark (a mark's field is never 20 characters long).
    const fields = await t.s.redis.hkeys(keys.sessionEvents(video, claims.sid))
    expect(fields.sort()).toEqual([eventField(e.id as string), `c:${record!.split('|')[0]}`].sort())
  })
})

describe('an insert repeated with its dedup token', () => {
  it('changes neither raw_events nor any aggregate, through every view including the cascaded ones', async () => {
    const video = uniq()
    const token = await session(video, 'w-dup')
    const claims = await claimsOf(token)
    const at = Date.now() - 30_000
    const counted = { outcome: 'counted' as const, reason: '', credited: 0 }
    const texts = [
      rowText({ claims, ip: '10.0.0.1', now: Date.now() }, { kind: 'event', event: eventSchema.parse(ev('play', { ts: at })), decision: counted }),
      rowText({ claims, ip: '10.0.0.1', now: Date.now() }, { kind: 'event', event: eventSchema.parse(ev('progress', { ts: at + 1_000, watched_ms: 1_000, position_ms: 1_000 })), decision: { ...counted, credited: 1_000 } }),
      rowText({ claims, ip: '10.0.0.1', now: Date.now() }, { kind: 'event', event: eventSchema.parse(ev('ad_impression', { ts: at + 2_000, ad_id: 'ad-d' })), decision: counted }),
    ]
    const flushToken = crypto.randomUUID()
    const body = encodeRows(texts, flushToken)
    await insertRawEvents(t.s.ch, body, flushToken)
    const once = await videoSnapshot(t.s.ch, video)
    expect(once.day[0]).toMatchObject({ views: 1, watch_ms: 1_000, ad_impressions: 1, unique_viewers: 1 })
    expect(once.week[0]).toMatchObject({ views: 1, watch_ms: 1_000, ad_impressions: 1, unique_viewers: 1 })
    expect(once.month[0]).toMatchObject({ views: 1, watch_ms: 1_000, ad_impressions: 1, unique_viewers: 1 })
    expect(once.adMonth).toEqual([expect.objectContaining({ ad_id: 'ad-d', impressions: 1 })])
    await insertRawEvents(t.s.ch, body, flushToken)
    // The same text in pieces, as the loader hands a load's entries over.
    await insertRawEvents(t.s.ch, body.split(/(?<=\n)/), flushToken)
    expect(await videoSnapshot(t.s.ch, video)).toEqual(once)
  })
})

/** A flush whose events were decided in Redis and logged, never loaded: what a crash leaves. */
const decideAndBuild = async (video: string, n: number, exp?: number) => {
  const token = await session(video)
  const claims = await claimsOf(token)
  const requestId = newRequestId(Date.now() - 60_000)
  const events = Array.from({ length: n }, (_, i) => (i === 0 ? ev('play', { ts: Date.now() - 20_000 }) : ev('progress', { ts: Date.now() - 20_000 + i * 1_000, watched_ms: 1_000, position_ms: i * 1_000 })))
  const decided = await decideDirectly(requestId, claims, '10.0.0.1', Date.now(), events.map((e) => ({
    id: e.id as string, type: e.type as 'play', ts: e.ts as number, positionMs: e.position_ms as number, watchedMs: (e.watched_ms as number) ?? 0, adId: '', preRejected: '',
  })))
  const flushToken = crypto.randomUUID()
  const texts = events.map((e, i) => {
    const d = decided[i]!
    if (d.kind !== 'new') throw new Error('expected new decisions')
    return rowText({ claims, ip: '10.0.0.1', now: Date.now() }, { kind: 'event', event: eventSchema.parse(e), decision: d.decision })
  })
  const body = encodeRows(texts, flushToken)
  const wal = createWal(join(t.s.settings.dataDir, 'wal'))
  await wal.write(flushToken, [{ videoId: video, sessionId: claims.sid, requestId, rows: texts.length, exp }], body)
  return { token, claims, events, texts, body, flushToken }
}

describe('a flush cut short by a crash', () => {
  it('repairs the materialized views when raw_events got the rows and the views did not', async () => {
    const video = `${FAILING_VIDEO_PREFIX}${crypto.randomUUID().slice(0, 8)}`
    const { token, events, body, flushToken } = await decideAndBuild(video, 5)
    // The raw part and the first views are written, then the insert dies before the rest
    // (as when the process is killed between them): a test-only view throws for this video.
    await withFailingView(t.s.ch, () => expect(insertRawEvents(t.s.ch, body, flushToken)).rejects.toThrow(/simulated crash/))
    const cut = await videoSnapshot(t.s.ch, video)
    expect(cut.rawIds).toEqual([{ n: 5, ids: 5 }])
    // Which views got their part before the failure varies; at least one is behind.
    expect([cut.day, cut.week, cut.month].some((g) => g.length === 0)).toBe(true)

    expect(await t.edge.repair()).toBe(1)
    const whole = await videoSnapshot(t.s.ch, video)
    const totals = { views: 1, watch_ms: 4_000, unique_viewers: 1 }
    for (const grain of [whole.day, whole.week, whole.month]) expect(grain).toEqual([expect.objectContaining(totals)])
    expect(whole.rawIds).toEqual([{ n: 5, ids: 5 }])
    expect(await (await t.post(token, events)).json()).toEqual({ accepted: 0, duplicates: 5, rejected: [] })
    expect(await videoSnapshot(t.s.ch, video)).toEqual(whole)
  })

  it('stores the flush once when nothing of it reached ClickHouse, leaving out events a retry already took over', async () => {
    const video = uniq()
    const { token, events } = await decideAndBuild(video, 4)
    // A retry of the first two events took them over and stored them before the repair ran.
    const taken = await t.post(token, events.slice(0, 2))
    expect(await taken.json()).toEqual({ accepted: 2, duplicates: 0, rejected: [] })
    expect(await t.edge.repair()).toBe(1)
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 4, ids: 4 }])
    expect(snap.day[0]).toMatchObject({ views: 1, watch_ms: 3_000 })
    expect(await (await t.post(token, events)).json()).toEqual({ accepted: 0, duplicates: 4, rejected: [] })
  })
})

describe("a flush repaired after its session's records expired", () => {
  const build = async (exp: number) => {
    const video = uniq()
    const built = await decideAndBuild(video, 4, exp)
    // A retry took the first event over and stored it in a flush of its own, before the records expired.
    const takeover = crypto.randomUUID()
    await insertRawEvents(t.s.ch, encodeRows([built.texts[0]!], takeover), takeover)
    await t.s.redis.del(keys.sessionEvents(video, built.claims.sid))
    return { video, ...built }
  }

  it('stores what ClickHouse lacks of it, once, when the token has expired (no retry can come)', async () => {
    const { video } = await build(Math.floor(Date.now() / 1000) - t.s.settings.CLOCK_TOLERANCE_SECONDS - 5)
    expect(await t.edge.repair()).toBe(1)
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 4, ids: 4 }])
    expect(snap.day[0]).toMatchObject({ views: 1, watch_ms: 3_000 })
  })

  it('leaves its events to the retries while the token is valid, though Redis lost their records', async () => {
    const { video, claims } = await build(Math.floor(Date.now() / 1000) + 600)
    await t.s.redis.del(keys.sessionState(video, claims.sid)) // lost with the records
    expect(await t.edge.repair()).toBe(1)
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 1, ids: 1 }])
  })

  it('stores what ClickHouse lacks of it, once, when the records expired after the session sat idle (retries are looked up in raw_events)', async () => {
    const { video } = await build(Math.floor(Date.now() / 1000) + 600)
    expect(await t.edge.repair()).toBe(1)
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 4, ids: 4 }])
    expect(snap.day[0]).toMatchObject({ views: 1, watch_ms: 3_000 })
  })
})

describe('when Redis is down', () => {
  it('acknowledges nothing (503 with Retry-After), says not ready, and recovers when Redis is back', async () => {
    const video = uniq()
    const token = await session(video)
    const batch = [ev('play', { ts: Date.now() - 30_000 })]
    await t.s.testRedis.server.stop()
    const res = await t.post(token, batch)
    expect(res.status).toBe(503)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((await res.json()).code).toBe('STORAGE_UNAVAILABLE')
    const ready = await t.app.request('/readyz')
    expect(ready.status).toBe(503)
    expect((await ready.json()).redis).toMatch(/^down/)
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 0, ids: 0 }])

    // Same port again; the client reconnects by itself.
    const again = await startPrivateRedis({ dir: `${t.s.testCh.dataDir}/redis-again`, port: t.s.testRedis.port, persist: false })
    t.s.testRedis.server = again
    if (t.s.redis.status !== 'ready') await once(t.s.redis, 'ready')
    expect((await t.app.request('/readyz')).status).toBe(200)
    const retry = await t.post(token, batch)
    expect(await retry.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).day[0]?.views).toBe(1)
  })
})
