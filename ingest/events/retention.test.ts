// How long a session's decisions stay in Redis, and what a retry gets once they are gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keys } from '../state/keys.ts'
import { rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { walDir } from '../wal.ts'
import { startTestEdge, ev, type TestEdge } from '../../test/harness/edge.ts'
import { videoSnapshot } from '../../test/harness/snapshot.ts'

let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge()
})
afterAll(() => t.stop())

const uniq = () => `v-${crypto.randomUUID().slice(0, 8)}`
/** A session that started a minute ago with a token good for three hours. */
async function session(video: string) {
  const sessionId = crypto.randomUUID()
  const token = await t.token({ videoId: video, sessionId, durationMs: 600_000 }, { now: new Date(Date.now() - 60_000), ttlSeconds: 3 * 3600 })
  return { token, sessionId }
}
/**
 * What DECISION_IDLE_MINUTES of silence does: the session's decisions are gone, and its
 * last batch was that long ago. The events of these tests are older still (`old`), as
 * events decided then would be: a client time at most the future tolerance past then.
 */
async function expireDecisions(video: string, sessionId: string) {
  await t.s.redis.del(keys.sessionEvents(video, sessionId))
  await t.s.redis.hset(keys.sessionState(video, sessionId), 'seen', Date.now() - (t.s.settings.DECISION_IDLE_MINUTES + 1) * 60_000)
}
/** A client time `ms` before the decisions' last batch of expireDecisions. */
const old = (ms: number) => Date.now() - (t.s.settings.DECISION_IDLE_MINUTES + 10) * 60_000 - ms

describe("a session's decisions", () => {
  it('stay in Redis for DECISION_IDLE_MINUTES after its last batch, its state until its token expires', async () => {
    const video = uniq()
    const { token, sessionId } = await session(video)
    expect((await t.post(token, [ev('play', { ts: Date.now() - 30_000 })])).status).toBe(200)
    const idle = t.s.settings.DECISION_IDLE_MINUTES * 60
    const events = await t.s.redis.ttl(keys.sessionEvents(video, sessionId))
    expect(events).toBeGreaterThan(idle - 10)
    expect(events).toBeLessThanOrEqual(idle)
    // The state (viewed, watch time, when the decisions were last written) outlives them.
    expect(await t.s.redis.ttl(keys.sessionState(video, sessionId))).toBeGreaterThan(2 * 3600)
  })
})

describe('a retry after the decisions of its session expired', () => {
  const batch = () => [
    ev('play', { ts: old(50_000) }),
    ev('progress', { ts: old(45_000), position_ms: 5_000, watched_ms: 5_000 }),
    ev('seek', { ts: old(44_000), position_ms: 700_000 }), // past the end: rejected
  ]

  it('gets what raw_events holds: duplicates, the same rejection, nothing stored or counted again', async () => {
    const video = uniq()
    const { token, sessionId } = await session(video)
    const events = batch()
    expect(await (await t.post(token, events)).json()).toEqual({ accepted: 2, duplicates: 0, rejected: [{ index: 2, reason: 'position_out_of_range' }] })
    const before = await videoSnapshot(t.s.ch, video)
    const views = await t.s.redis.get(keys.liveViews(video))
    await expireDecisions(video, sessionId)

    expect(await (await t.post(token, events)).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [{ index: 2, reason: 'position_out_of_range' }] })
    expect(await videoSnapshot(t.s.ch, video)).toEqual(before)
    expect(await t.s.redis.get(keys.liveViews(video))).toBe(views)
    // And once more, now from the records the lookup wrote back.
    expect(await (await t.post(token, events)).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [{ index: 2, reason: 'position_out_of_range' }] })
    expect(await videoSnapshot(t.s.ch, video)).toEqual(before)
  })

  it('takes new events beside the old ones, and keeps looking old ids up after the first batch back', async () => {
    const video = uniq()
    const { token, sessionId } = await session(video)
    const [play, progress] = batch()
    await t.post(token, [play!])
    await t.post(token, [progress!])
    await expireDecisions(video, sessionId)

    const fresh = ev('progress', { ts: Date.now(), position_ms: 10_000, watched_ms: 5_000 })
    expect(await (await t.post(token, [play!, fresh])).json()).toEqual({ accepted: 1, duplicates: 1, rejected: [] })
    // The session's records exist again, but hold nothing of before the gap but what was looked up.
    expect(await (await t.post(token, [progress!])).json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
    // A play after the gap is the session's second: the view was counted once.
    expect(await (await t.post(token, [ev('play', { ts: Date.now() })])).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] })
    const snap = await videoSnapshot(t.s.ch, video)
    expect(snap.rawIds).toEqual([{ n: 4, ids: 4 }])
    expect(snap.day[0]).toMatchObject({ views: 1 })
    expect(snap.raw).toContainEqual({ outcome: 'stored', reason: 'repeat_play', type: 'play', n: 1 })
  })

  it('stores an event it never got once, though it is as old as the gap', async () => {
    const video = uniq()
    const { token, sessionId } = await session(video)
    await t.post(token, [ev('play', { ts: old(50_000) })])
    await expireDecisions(video, sessionId)
    // Sent first now, with a client time from before the gap: looked up, not found, taken.
    expect(await (await t.post(token, [ev('pause', { ts: old(40_000), position_ms: 3_000 })])).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 2, ids: 2 }])
  })

  it('waits (503 with Retry-After) while an entry of the write-ahead log older than 10 s is not loaded, and then answers', async () => {
    const video = uniq()
    const { token, sessionId } = await session(video)
    const events = batch().slice(0, 2)
    await t.post(token, events)
    const before = await videoSnapshot(t.s.ch, video)
    await expireDecisions(video, sessionId)
    // A flush logged a minute ago and not loaded yet (ClickHouse was away): what it holds is
    // not in raw_events, so no lookup there can be trusted. (Other edges' entries count the
    // same where ClickHouse is shared: see loads.test.ts.)
    const stuck = join(walDir(t.s.settings), `${crypto.randomUUID()}.wal`)
    writeFileSync(stuck, '')
    utimesSync(stuck, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
    try {
      const res = await t.post(token, events)
      expect(res.status).toBe(503)
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect((await res.json()).code).toBe('STORAGE_UNAVAILABLE')
      // New events of the same session need no lookup and are taken meanwhile.
      expect(await (await t.post(token, [ev('progress', { ts: Date.now(), position_ms: 9_000, watched_ms: 1_000 })])).json()).toMatchObject({ accepted: 1 })
    } finally {
      rmSync(stuck, { force: true })
    }
    expect(await (await t.post(token, events)).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [] })
    const after = await videoSnapshot(t.s.ch, video)
    expect(after.day[0]).toMatchObject({ views: before.day[0]!.views })
    expect(after.rawIds).toEqual([{ n: 3, ids: 3 }])
  })
})
