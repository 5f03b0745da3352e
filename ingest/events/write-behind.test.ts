import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestEdge, ev, type TestEdge } from '../../test/harness/edge.ts'
import { FAILING_VIDEO_PREFIX, videoSnapshot, withFailingView } from '../../test/harness/snapshot.ts'
import { createEdge } from '../app.ts'
import { createMetrics, watchIngestBuffer } from '../../lib/metrics.ts'
import { encodeRows, insertRawEvents, rowContext, rowText } from './rows.ts'
import { rows } from '../../test/harness/engines.ts'
import type { PlaybackClaims } from '../tokens/playback.ts'
import { AGGREGATES_GENERATION_KEY, AGGREGATES_LAST_LOAD_KEY } from '../../lib/aggregates-generation.ts'

/**
 * The edge answers once a batch is in its write-ahead log and loads ClickHouse behind:
 * what it acknowledged survives ClickHouse being down and the edge stopping before the
 * load, and what waits for ClickHouse is bounded by BUFFER_MAX_ROWS.
 */
let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge({ BUFFER_MAX_ROWS: '6', FLUSH_MAX_ROWS: '6', BUFFER_WAIT_MS: '1500' })
})
afterAll(() => t.stop())

const uniq = () => `v-${crypto.randomUUID().slice(0, 8)}`
const failures = async () => (await t.s.metrics.flushFailures.get()).values[0]?.value ?? 0
/** Resolves once the loader has failed at least once more than `before`. */
async function loaderFailed(before: number): Promise<void> {
  while ((await failures()) === before) await new Promise((r) => setImmediate(r))
}
const watch = (at: number) => [ev('play', { ts: at }), ev('progress', { ts: at + 1_000, watched_ms: 1_000, position_ms: 1_000 })]

describe('the write-behind edge', () => {
  it("loads an older log's rows, whose times are bare epoch milliseconds, at the same times", async () => {
    const video = uniq()
    const claims = { vid: video, cid: 'c-old', sub: 'w-old', sid: crypto.randomUUID(), dur: 60_000, ads: [], iat: 1, exp: 2 } as unknown as PlaybackClaims
    const event = { id: crypto.randomUUID(), type: 'pause' as const, ts: 1_764_000_000_123, position_ms: 0 }
    const line = rowText(rowContext({ claims, ip: '10.9.0.9', now: 1_764_000_001_456 }), { kind: 'event', event, decision: { outcome: 'stored', reason: '', credited: 0 } })
    const older = line.split('\t').map((v, i) => (i === 1 ? '1764000000123' : i === 10 ? '1764000001456' : v)).join('\t')
    await insertRawEvents(t.s.ch, encodeRows([older], `old-${video}`), `old-${video}`)
    const [row] = await rows<{ e: string; r: string }>(t.s.ch, 'SELECT toString(event_time) AS e, toString(received_at) AS r FROM raw_events WHERE video_id = {v:String}', { v: video })
    expect(row).toEqual({ e: '2025-11-24 16:00:00.123', r: '2025-11-24 16:00:01.456' })
  })

  it('marks each load into ClickHouse with a new id in Redis, which ends analytics’ reuse of open-period answers', async () => {
    const token = await t.token({ videoId: uniq() })
    const lastLoad = () => t.s.redis.get(AGGREGATES_LAST_LOAD_KEY)
    const seen = new Set<string | null>([await lastLoad()])
    for (let i = 0; i < 2; i++) {
      const before = await lastLoad()
      expect((await t.post(token, watch(Date.now() - 10_000))).status).toBe(200)
      // The mark follows the insert without being awaited by it.
      while ((await lastLoad()) === before) await new Promise((r) => setImmediate(r))
      seen.add(await lastLoad())
    }
    expect(seen.size).toBe(3)
    expect([...seen].slice(1).every((id) => /^[0-9a-f-]{36}$/.test(id ?? ''))).toBe(true)
  })

  it('refuses batches with 503 once the rows not yet in ClickHouse reach BUFFER_MAX_ROWS and no room comes within BUFFER_WAIT_MS, and takes them again once loaded', async () => {
    const video = uniq()
    const token = await t.token({ videoId: video })
    const before = await failures()
    await t.s.ch.command({ query: 'DETACH TABLE raw_events' })
    try {
      const first = await t.post(token, [ev('pause'), ev('pause'), ev('pause'), ev('pause')], { load: false })
      expect(await first.json()).toMatchObject({ accepted: 4 })
      await loaderFailed(before)
      const over = await t.post(token, [ev('pause'), ev('pause'), ev('pause')], { load: false })
      expect(over.status).toBe(503)
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect((await over.json()).code).toBe('OVERLOADED')
    } finally {
      await t.s.ch.command({ query: 'ATTACH TABLE raw_events' })
    }
    await t.edge.loader.drain()
    const again = await t.post(token, [ev('pause'), ev('pause'), ev('pause')])
    expect(await again.json()).toMatchObject({ accepted: 3 })
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 7, ids: 7 }])
  })

  it('refuses batches with 503 once the text of the rows not yet in ClickHouse reaches BUFFER_MAX_BYTES, however few the rows', async () => {
    const video = uniq()
    // Far below the row bound: only the bytes can refuse (a load makes no room while raw_events is away).
    const edge = createEdge({ ...t.s, settings: { ...t.s.settings, BUFFER_MAX_ROWS: 100_000, BUFFER_MAX_BYTES: 8 * 1024 * 1024, BUFFER_WAIT_MS: 0 } })
    const token = await t.token({ videoId: video })
    // Invalid events are kept with up to 4 KiB of their payload: 200 of them make ~0.9 MB of rows.
    const pad = 'x'.repeat(4_000)
    const post = () =>
      edge.app.request('/v1/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: Array.from({ length: 200 }, (_, n) => ({ type: 'unknown', n, pad })) }),
      }, { ip: '10.7.0.1' })
    // The gauges an operator watches, as the server registers them (lib/main.ts).
    const metrics = createMetrics()
    watchIngestBuffer(metrics, edge.buffered)
    const gauge = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await metrics.registry.metrics())?.[1])
    const before = await failures()
    await t.s.ch.command({ query: 'DETACH TABLE raw_events' })
    const statuses: number[] = []
    try {
      for (let i = 0; i < 12 && !statuses.includes(503); i++) {
        const res = await post()
        statuses.push(res.status)
        if (res.status === 503) expect(await res.json()).toMatchObject({ code: 'OVERLOADED' })
        else expect((await res.json()).rejected).toHaveLength(200)
        if (i === 0) await loaderFailed(before)
      }
      // What is held while ClickHouse is away: the eight batches' rows, ~0.88 MB of text each.
      expect(await gauge('cs_ingest_buffer_rows')).toBe(8 * 200)
      expect(await gauge('cs_ingest_buffer_bytes')).toBeGreaterThan(8 * 850_000)
      expect(await gauge('cs_ingest_buffer_bytes')).toBeLessThanOrEqual(8 * 1024 * 1024)
    } finally {
      await t.s.ch.command({ query: 'ATTACH TABLE raw_events' })
    }
    // Each batch reserves twice its body and 256 bytes and its shared columns a row, then keeps its
    // rows' ~0.88 MB: eight fit under 8 MiB beside each other, the ninth does not.
    expect(statuses).toEqual([...Array(8).fill(200), 503])
    expect(edge.writer.bufferedBytes).toBe(0)
    await edge.loader.drain()
    expect(edge.loader.backlogBytes).toBe(0)
    expect([await gauge('cs_ingest_buffer_rows'), await gauge('cs_ingest_buffer_bytes')]).toEqual([0, 0])
    expect((await post()).status).toBe(200)
    await edge.flush()
    // Every batch acknowledged is stored, and nothing of the refused one.
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 9 * 200, ids: 9 * 200 }])
  })

  it('holds a batch that finds the buffer full until a load makes room, then takes it', async () => {
    const video = uniq()
    const token = await t.token({ videoId: video })
    const before = await failures()
    const roomWaits = async () => (await t.s.metrics.ingestStage.get()).values.find((v) => v.labels.stage === 'room' && v.metricName?.endsWith('_count'))?.value ?? 0
    const waitsBefore = await roomWaits()
    await t.s.ch.command({ query: 'DETACH TABLE raw_events' })
    let held: Promise<Response>
    try {
      const first = await t.post(token, [ev('pause'), ev('pause'), ev('pause'), ev('pause')], { load: false })
      expect(await first.json()).toMatchObject({ accepted: 4 })
      await loaderFailed(before)
      // 4 rows wait for ClickHouse: 3 more do not fit in 6, so this batch waits for room.
      held = t.post(token, [ev('pause'), ev('pause'), ev('pause')], { load: false })
      while (t.edge.writer.waitingForRoom === 0) await new Promise((r) => setImmediate(r))
    } finally {
      await t.s.ch.command({ query: 'ATTACH TABLE raw_events' })
    }
    // The loader's retry stores the 4; the held batch then gets their room, within BUFFER_WAIT_MS.
    const res = await held
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ accepted: 3 })
    await t.edge.loader.drain()
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 7, ids: 7 }])
    expect(await roomWaits()).toBe(waitsBefore + 1)
  })

  it('keeps what it acknowledged when it stops before loading, and the next edge on the same log loads it once', async () => {
    const video = uniq()
    const token = await t.token({ videoId: video, viewerId: 'w-stop' })
    const batch = watch(Date.now() - 20_000)
    const before = await failures()
    const first = createEdge(t.s)
    await t.s.ch.command({ query: 'DETACH TABLE raw_events' })
    try {
      const res = await first.app.request('/v1/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: batch }),
      }, { ip: '10.9.0.1' })
      expect(await res.json()).toEqual({ accepted: 2, duplicates: 0, rejected: [] })
      await loaderFailed(before)
      // Shutdown with ClickHouse still down: the load gives up, its manifest and entry stay.
      expect(await first.flush(0)).toBe(false)
    } finally {
      await t.s.ch.command({ query: 'ATTACH TABLE raw_events' })
    }
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 0, ids: 0 }])

    const generation = async () => Number((await t.s.redis.get(AGGREGATES_GENERATION_KEY)) ?? 0)
    const generationBefore = await generation()
    const next = createEdge(t.s)
    expect(await next.recover()).toBeGreaterThanOrEqual(1)
    // Rows landed late: cached stats of closed days are dropped (they may be among them).
    while ((await generation()) === generationBefore) await new Promise((r) => setImmediate(r))
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 2, ids: 2 }])
    for (const grain of [snap.day, snap.week, snap.month]) expect(grain).toEqual([expect.objectContaining({ views: 1, watch_ms: 1_000 })])
    // Nothing is left to finish, and the batch sent again is a duplicate.
    expect(await next.repair()).toBe(0)
    expect(await (await t.post(token, batch)).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [] })
    await next.flush()
  })

  it('completes the views of a load that raw_events took and a view did not, once, at the next start', async () => {
    const video = `${FAILING_VIDEO_PREFIX}${crypto.randomUUID().slice(0, 8)}`
    const token = await t.token({ videoId: video, viewerId: 'w-cut' })
    const batch = watch(Date.now() - 20_000)
    const before = await failures()
    const first = createEdge(t.s)
    // The insert fails after raw_events and the views before the failing one took their part.
    await withFailingView(t.s.ch, async () => {
      const res = await first.app.request('/v1/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: batch }),
      }, { ip: '10.9.0.2' })
      expect(res.status).toBe(200)
      await loaderFailed(before)
      expect(await first.flush(0)).toBe(false)
    })
    const cut = await videoSnapshot(t.s.ch, video)
    expect(cut.rawIds).toEqual([{ n: 2, ids: 2 }])
    expect([cut.day, cut.week, cut.month].some((g) => g.length === 0)).toBe(true)

    const next = createEdge(t.s)
    expect(await next.recover()).toBe(1)
    const whole = await videoSnapshot(t.s.ch, video)
    expect(whole.rawIds).toEqual([{ n: 2, ids: 2 }])
    for (const grain of [whole.day, whole.week, whole.month]) expect(grain).toEqual([expect.objectContaining({ views: 1, watch_ms: 1_000, unique_viewers: 1 })])
    await next.flush()
  })

  it('stores every event once while the periodic repair runs during flushes and loads', async () => {
    const video = uniq()
    const edge = createEdge({ ...t.s, settings: { ...t.s.settings, BUFFER_MAX_ROWS: 100_000, FLUSH_MAX_ROWS: 1_000, FLUSH_INTERVAL_MS: 1, LOAD_INTERVAL_MS: 1 } })
    let posting = true
    let repairs = 0
    // The repair, as the server's timer runs it, over and over while batches are logged and loaded.
    const repairing = (async () => {
      while (posting) {
        await edge.repair()
        repairs++
        await new Promise((r) => setImmediate(r))
      }
    })()
    const sessions = await Promise.all(Array.from({ length: 20 }, (_, i) => t.token({ videoId: video, viewerId: `w-race-${i}` })))
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(
        sessions.map((token) =>
          edge.app.request('/v1/events', {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ events: [ev('pause'), ev('pause'), ev('pause')] }),
          }, { ip: `10.8.${round}.1` }),
        ),
      )
      expect(answers.map((a) => a.status)).toEqual(sessions.map(() => 200))
    }
    posting = false
    await repairing
    await edge.flush()
    expect(repairs).toBeGreaterThan(10)
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 600, ids: 600 }])
  })
})
