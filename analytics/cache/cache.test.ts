import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startPrivateRedis } from '../../lib/redis-server.ts'
import { insertEvents, type EventRow } from '../../test/analytics/events.ts'
import { ADMIN_EMAIL, ANALYST_EMAIL, startAnalyticsApi, type Session, type TestApi } from '../../test/analytics/helpers.ts'
import { holdingReplies } from '../../test/harness/held-replies.ts'
import { videoStats } from '../stats/queries.ts'
import { createStatsReader } from '../stats/reader.ts'
import { createTopReader } from '../top/reader.ts'
import { topVideos } from '../top/queries.ts'
import { bumpAggregatesGeneration, createAggregateCache, markAggregatesLoad } from './aggregate-cache.ts'
import { lastClosedDay } from './closed-days.ts'

// 12:00 on 4 March in Seoul: with the 48 h lateness window, 1 March is the last closed day; 2 March is open.
let clock = new Date('2026-03-04T03:00:00Z')
const OPEN_TTL_SECONDS = 60
const OPEN_REUSE_MAX_MS = 30_000

let api: TestApi
let creator: Session
let other: Session
let admin: Session
let analyst: Session
let a: string
let b: string

async function video(s: Session, title: string): Promise<string> {
  const res = await api.request('/v1/videos', { method: 'POST', token: s.token, json: { title, duration_ms: 600_000 } })
  return ((await res.json()) as { video_id: string }).video_id
}
const A = (f: Omit<EventRow, 'video_id' | 'creator_id'>): EventRow => ({ video_id: a, creator_id: creator.userId, ...f })
const B = (f: Omit<EventRow, 'video_id' | 'creator_id'>): EventRow => ({ video_id: b, creator_id: other.userId, ...f })
/** Inserts events as the edge's loader does: into raw_events, then marks the load in Redis. */
const land = async (events: EventRow[]) => {
  await insertEvents(api.s.ch, events)
  await markAggregatesLoad(api.s.redis)
}
const plays = (n: number, make: typeof A, at: string, prefix: string) => Array.from({ length: n }, (_, i) => make({ type: 'play', viewer_id: `${prefix}${i}`, at }))

beforeAll(async () => {
  // The open-period TTL is long in real time so that Redis never expires an entry mid-test; the app's clock decides freshness.
  api = await startAnalyticsApi({ PLATFORM_TOP_OPEN_CACHE_TTL_SECONDS: String(OPEN_TTL_SECONDS), OPEN_PERIOD_REUSE_MAX_MS: String(OPEN_REUSE_MAX_MS) }, { now: () => clock })
  ;[creator, other, admin, analyst] = await Promise.all([
    api.login('cache-creator', { creator: true }),
    api.login('cache-other', { creator: true }),
    api.login('cache-admin', { email: ADMIN_EMAIL }),
    api.login('cache-analyst', { email: ANALYST_EMAIL }),
  ])
  a = await video(creator, 'Alpha')
  b = await video(other, 'Beta')
  await land([
    ...plays(2, A, '2026-02-27 01:00:00', 'p'),
    ...plays(3, A, '2026-03-01 01:00:00', 'q'),
    A({ type: 'progress', viewer_id: 'q0', at: '2026-03-01 01:01:00', credited_watch_ms: 4_000 }),
    ...plays(1, A, '2026-03-02 01:00:00', 'r'),
    ...plays(5, B, '2026-03-01 02:00:00', 's'),
    ...plays(2, B, '2026-03-02 02:00:00', 't'),
  ])
})
afterAll(() => api?.stop())

type Table = { rows: Record<string, unknown>[] }
async function get(path: string, token: string) {
  const res = await api.request(path, { token })
  const text = await res.text()
  const json = res.status === 200 && res.headers.get('content-type')?.startsWith('application/json')
  return { status: res.status, cache: res.headers.get('cache-status'), text, body: json ? (JSON.parse(text) as Table) : undefined }
}

it('takes a day as closed once the lateness window, the clock-skew tolerance and an insert have passed since it ended', () => {
  const settings = api.s.settings
  expect(lastClosedDay(settings, clock)).toBe('2026-03-01')
  // 2 March ends at 15:00 UTC on 2 March; it closes 48 h, 5 min and 10 s later.
  expect(lastClosedDay(settings, new Date('2026-03-04T15:05:09Z'))).toBe('2026-03-01')
  expect(lastClosedDay(settings, new Date('2026-03-04T15:05:10Z'))).toBe('2026-03-02')
})

describe('stats', () => {
  const closed = () => `/v1/videos/${a}/stats?grain=day&from=2026-02-27&to=2026-03-01`

  it('serves a closed range from the cache, equal to the uncached answer, as JSON and CSV', async () => {
    const first = await get(closed(), creator.token)
    expect(first).toMatchObject({ status: 200, cache: 'analytics; fwd=miss; stored' })
    const uncached = await videoStats(api.s.ch, { videoId: a, creatorId: creator.userId, grain: 'day', from: '2026-02-27', to: '2026-03-01' })
    expect(first.body?.rows).toEqual(uncached)
    expect(uncached.map((r) => [r.period, r.views, r.watch_ms])).toEqual([
      ['2026-02-27', 2, 0],
      ['2026-02-28', 0, 0],
      ['2026-03-01', 3, 4_000],
    ])
    const again = await get(closed(), creator.token)
    expect(again.cache).toBe('analytics; hit')
    expect(again.text).toBe(first.text)
    const csv = await get(`${closed()}&format=csv`, creator.token)
    expect(csv.cache).toBe('analytics; hit')
    expect(csv.text.split('\r\n').slice(1, 4)).toEqual(['2026-02-27,2,0,0,2,0,0,0', '2026-02-28,0,0,0,0,0,0,0', '2026-03-01,3,4000,0,3,0,0,0'])
  })

  it('keeps serving the cached closed days until a repair bumps the generation', async () => {
    // What only a repaired flush can do: add an event to a closed day.
    await insertEvents(api.s.ch, plays(1, A, '2026-02-28 01:00:00', 'late'))
    const stale = await get(closed(), creator.token)
    expect(stale.cache).toBe('analytics; hit')
    expect(stale.body?.rows[1]).toMatchObject({ period: '2026-02-28', views: 0 })
    await bumpAggregatesGeneration(api.s.redis)
    const repaired = await get(closed(), creator.token)
    expect(repaired.cache).toBe('analytics; fwd=miss; stored')
    expect(repaired.body?.rows[1]).toMatchObject({ period: '2026-02-28', views: 1 })
  })

  it('keeps the closed rows it read in memory, under the generation that filed them', async () => {
    // The closed range of the test before, after its repair: the rows this process read or stored are kept.
    const first = await get(closed(), creator.token)
    expect(first.cache).toBe('analytics; hit')
    // Their Redis hashes go, of this generation and the one before (as when their TTL runs out in Redis):
    // the answer is still the same hit, from memory.
    const hashes = await api.s.redis.keys(`cs:agg:*:stats:${a}:day`)
    expect(hashes.length).toBeGreaterThan(0)
    await api.s.redis.del(...hashes)
    expect(await api.s.redis.keys(`cs:agg:*:stats:${a}:day`)).toEqual([])
    expect(await get(closed(), creator.token)).toMatchObject({ cache: 'analytics; hit', text: first.text })
    expect(first.body?.rows[1]).toMatchObject({ period: '2026-02-28', views: 1 })
  })

  it('reuses the open days of a range only until the next load, so a new event shows once it is loaded', async () => {
    const path = `/v1/videos/${a}/stats?grain=day&from=2026-02-28&to=2026-03-02`
    const before = await get(path, creator.token)
    // 28 February and 1 March come from the cache, 2 March from the engine (and is kept until the next load).
    expect(before.cache).toBe('analytics; fwd=partial; stored')
    expect(before.body?.rows.map((r) => [r.period, r.views])).toEqual([
      ['2026-02-28', 1],
      ['2026-03-01', 3],
      ['2026-03-02', 1],
    ])
    expect(await get(path, creator.token)).toMatchObject({ cache: 'analytics; hit', text: before.text })
    await land(plays(2, A, '2026-03-02 05:00:00', 'new'))
    const after = await get(path, creator.token)
    expect(after.cache).toBe('analytics; fwd=partial; stored')
    expect(after.body?.rows.at(-1)).toMatchObject({ period: '2026-03-02', views: 3 })
    // A week or a month that holds an open day is open too: nothing of it goes to the closed-period cache.
    const month = `/v1/videos/${a}/stats?grain=month&from=2026-03-01&to=2026-03-01`
    expect((await get(month, creator.token)).cache).toBe('analytics; fwd=miss; stored')
    expect((await get(month, creator.token)).cache).toBe('analytics; hit')
  })

  it('reuses an answer over open days at most OPEN_PERIOD_REUSE_MAX_MS when a load went unmarked', async () => {
    const path = `/v1/videos/${a}/stats?grain=day&from=2026-03-02&to=2026-03-02`
    await markAggregatesLoad(api.s.redis)
    const first = await get(path, creator.token)
    expect(first.cache).toBe('analytics; fwd=miss; stored')
    // Rows that reached the engine without the edge marking the load (Redis unreachable from it at that moment).
    await insertEvents(api.s.ch, plays(1, A, '2026-03-02 06:00:00', 'unmarked'))
    const started = clock
    const maxAge = OPEN_REUSE_MAX_MS
    try {
      clock = new Date(started.getTime() + maxAge - 1)
      expect(await get(path, creator.token)).toMatchObject({ cache: 'analytics; hit', text: first.text })
      clock = new Date(started.getTime() + maxAge)
      const fresh = await get(path, creator.token)
      expect(fresh.cache).toBe('analytics; fwd=miss; stored')
      expect(fresh.body?.rows).toMatchObject([{ period: '2026-03-02', views: 4 }])
    } finally {
      clock = started
    }
  })
})

describe('top', () => {
  it('serves a closed day from the cache, cut to each limit asked for', async () => {
    const path = (limit: number) => `/v1/top?metric=views&grain=day&date=2026-03-01&limit=${limit}`
    const first = await get(path(5), analyst.token)
    expect(first.cache).toBe('analytics; fwd=miss; stored')
    expect(first.body?.rows.map((r) => [r.rank, r.video_id, r.views])).toEqual([
      [1, b, 5],
      [2, a, 3],
    ])
    expect(first.body?.rows).toEqual((await topVideos(api.s.ch, { metric: 'views', grain: 'day', date: '2026-03-01', limit: 5 })).rows)
    const one = await get(path(1), admin.token)
    expect(one.cache).toBe('analytics; hit')
    expect(one.body?.rows).toEqual(first.body?.rows.slice(0, 1))
  })

  it('keeps a top of 10 rows for short limits and one of 100 for longer ones', async () => {
    const path = (limit: number) => `/v1/top?metric=watch_time&grain=day&date=2026-03-01&limit=${limit}`
    expect((await get(path(3), analyst.token)).cache).toBe('analytics; fwd=miss; stored')
    expect((await get(path(10), analyst.token)).cache).toBe('analytics; hit')
    const long = await get(path(11), analyst.token)
    expect(long.cache).toBe('analytics; fwd=miss; stored')
    expect((await get(path(100), analyst.token)).cache).toBe('analytics; hit')
    expect(long.body?.rows).toEqual((await topVideos(api.s.ch, { metric: 'watch_time', grain: 'day', date: '2026-03-01', limit: 11 })).rows)
  })

  it('reuses the platform top of an open day for PLATFORM_TOP_OPEN_CACHE_TTL_SECONDS, then queries it again', async () => {
    const path = '/v1/top?metric=views&grain=day&date=2026-03-02'
    const first = await get(path, analyst.token)
    expect(first.cache).toBe('analytics; fwd=miss; stored')
    expect(first.body?.rows.map((r) => [r.video_id, r.views])).toEqual([
      [a, 4],
      [b, 2],
    ])
    await insertEvents(api.s.ch, plays(4, B, '2026-03-02 06:00:00', 'u'))
    const started = clock
    try {
      clock = new Date(started.getTime() + (OPEN_TTL_SECONDS - 1) * 1000)
      expect(await get(path, analyst.token)).toMatchObject({ cache: 'analytics; hit', text: first.text })
      clock = new Date(started.getTime() + OPEN_TTL_SECONDS * 1000)
      const fresh = await get(path, analyst.token)
      expect(fresh.cache).toBe('analytics; fwd=miss; stored')
      expect(fresh.body?.rows.map((r) => [r.video_id, r.views])).toEqual([
        [b, 6],
        [a, 4],
      ])
    } finally {
      clock = started
    }
  })

  it('reuses a creator’s top of an open day only until the next load', async () => {
    const path = '/v1/me/top?metric=views&grain=day&date=2026-03-02'
    const before = await get(path, other.token)
    expect(before.cache).toBe('analytics; fwd=miss; stored')
    expect(before.body?.rows).toMatchObject([{ video_id: b, views: 6 }])
    expect(await get('/v1/me/top?metric=views&grain=day&date=2026-03-02&limit=1', other.token)).toMatchObject({ cache: 'analytics; hit', text: before.text })
    await land(plays(1, B, '2026-03-02 07:00:00', 'v'))
    const after = await get(path, other.token)
    expect(after.cache).toBe('analytics; fwd=miss; stored')
    expect(after.body?.rows).toMatchObject([{ video_id: b, views: 7 }])
  })
})

describe('writes to the cache', () => {
  it('are not waited for: a miss is answered while the reply to its write is still held, and a later read finds the entry', async () => {
    const held = holdingReplies(api.s.redis, ['set', 'exec'])
    const deps = { ch: api.s.ch, rules: api.s.settings, now: () => clock, closedTtlSeconds: 600, platformOpenTtlSeconds: 0 }
    const readStats = createStatsReader({ ...deps, cache: createAggregateCache(held.client) })
    const readTop = createTopReader({ ...deps, cache: createAggregateCache(held.client) })
    // Closed periods no test here has asked for: both miss, and their answers go to Redis.
    const answered: string[] = []
    const stats = readStats({ videoId: b, creatorId: other.userId, grain: 'month', from: '2026-02-01', to: '2026-02-01' }).then((x) => (answered.push('stats'), x))
    const top = readTop({ metric: 'watch_time', grain: 'week', date: '2026-02-23', limit: 5 }).then((x) => (answered.push('top'), x))
    try {
      await vi.waitFor(() => expect(answered.sort()).toEqual(['stats', 'top']))
      // Both answered while their writes' replies were held (the top's threshold was written too).
      expect(held.sent).toBeGreaterThanOrEqual(2)
      expect((await stats).outcome).toBe('miss')
      expect((await stats).rows.map((r) => [r.period, r.views])).toEqual([['2026-02-01', 0]])
      expect((await top).outcome).toBe('miss')
    } finally {
      held.release()
    }
    // Redis ran the writes when they were sent: another process (a reader of its own) finds them.
    const again = { stats: createStatsReader({ ...deps, cache: createAggregateCache(api.s.redis) }), top: createTopReader({ ...deps, cache: createAggregateCache(api.s.redis) }) }
    expect((await again.stats({ videoId: b, creatorId: other.userId, grain: 'month', from: '2026-02-01', to: '2026-02-01' })).outcome).toBe('hit')
    expect((await again.top({ metric: 'watch_time', grain: 'week', date: '2026-02-23', limit: 5 })).outcome).toBe('hit')
  })

  it('of stats rows go after the answers of their turn: the answers one batch query resolves are all given before the first write is built', async () => {
    const order: string[] = []
    // The real client, noting when a write of rows (an HSET in a MULTI; the versions are read in one too) is built.
    const bound = <T extends object>(t: T, key: string | symbol) => {
      const v = Reflect.get(t, key, t) as unknown
      return typeof v === 'function' ? v.bind(t) : v
    }
    const noting = new Proxy(api.s.redis, {
      get: (t, key) =>
        key !== 'multi'
          ? bound(t, key)
          : () => new Proxy(t.multi(), { get: (m, k) => (k === 'hset' ? (...args: Parameters<typeof m.hset>) => (order.push('write'), m.hset(...args)) : bound(m, k)) }),
    })
    const readStats = createStatsReader({ ch: api.s.ch, cache: createAggregateCache(noting), rules: api.s.settings, now: () => clock, closedTtlSeconds: 600, batchGatherMs: 250 })
    // Closed ranges of three hashes no test here has asked for: one batch (the first read waits 250 ms for the
    // others, which need only Redis round trips first), three misses, three writes.
    const asked = [
      { videoId: a, creatorId: creator.userId, grain: 'week', from: '2026-02-16', to: '2026-02-23' },
      { videoId: b, creatorId: other.userId, grain: 'week', from: '2026-02-16', to: '2026-02-23' },
      { videoId: b, creatorId: other.userId, grain: 'day', from: '2026-02-27', to: '2026-02-28' },
    ] as const
    const answers = await Promise.all(asked.map((q) => readStats(q).then((x) => (order.push('answer'), x))))
    expect(answers.map((x) => x.outcome)).toEqual(['miss', 'miss', 'miss'])
    expect(answers[1]!.rows.map((r) => [r.period, r.views])).toEqual([['2026-02-16', 0], ['2026-02-23', 5]])
    await vi.waitFor(() => expect(order).toEqual(['answer', 'answer', 'answer', 'write', 'write', 'write']))
    // The writes landed: another reader of its own finds them in Redis.
    const again = createStatsReader({ ch: api.s.ch, cache: createAggregateCache(api.s.redis), rules: api.s.settings, now: () => clock, closedTtlSeconds: 600 })
    await vi.waitFor(async () => expect((await Promise.all(asked.map((q) => again(q)))).map((x) => x.outcome)).toEqual(['hit', 'hit', 'hit']))
  })
})

describe('the cache and who may see what', () => {
  it('never serves one creator’s cached top or stats to another', async () => {
    const path = '/v1/me/top?metric=views&grain=day&date=2026-03-01'
    const mine = await get(path, creator.token)
    expect(mine.body?.rows.map((r) => r.video_id)).toEqual([a])
    expect((await get(path, creator.token)).cache).toBe('analytics; hit')
    const theirs = await get(path, other.token)
    expect(theirs.cache).toBe('analytics; fwd=miss; stored')
    expect(theirs.body?.rows.map((r) => r.video_id)).toEqual([b])
    // The platform top, cached above, is still for admins and analysts only.
    expect((await get('/v1/top?metric=views&grain=day&date=2026-03-01', creator.token)).status).toBe(403)

    const stats = `/v1/videos/${a}/stats?grain=day&from=2026-02-27&to=2026-03-01`
    expect((await get(stats, creator.token)).cache).toBe('analytics; hit')
    const denied = await get(stats, other.token)
    expect(denied.status).toBe(404)
    expect(denied.cache).toBeNull()
    expect(await get(stats, admin.token)).toMatchObject({ status: 200, cache: 'analytics; hit', text: (await get(stats, creator.token)).text })
  })
})

describe('when Redis is down', () => {
  // Runs last in this file: it stops Redis, then starts a new, empty one.
  it('answers from the engine, says so, and uses the cache again once Redis is back', async () => {
    const stats = `/v1/videos/${a}/stats?grain=day&from=2026-02-27&to=2026-03-01`
    const top = '/v1/top?metric=views&grain=day&date=2026-03-01'
    const cached = { stats: await get(stats, creator.token), top: await get(top, admin.token) }
    expect([cached.stats.cache, cached.top.cache]).toEqual(['analytics; hit', 'analytics; hit'])

    await api.s.testRedis.server.stop()
    const down = { stats: await get(stats, creator.token), top: await get(top, admin.token) }
    expect(down.stats).toMatchObject({ status: 200, cache: 'analytics; fwd=bypass; detail=redis-unavailable', text: cached.stats.text })
    expect(down.top).toMatchObject({ status: 200, cache: 'analytics; fwd=bypass; detail=redis-unavailable', text: cached.top.text })
    // A creator's own settlement answers fall back the same way.
    expect((await get('/v1/me/settlements?grain=day&from=2026-03-01&to=2026-03-01', creator.token)).cache).toBe('analytics; fwd=bypass; detail=redis-unavailable')

    api.s.testRedis.server = await startPrivateRedis({ dir: `${api.s.testCh.dataDir}/redis-again`, port: api.s.testRedis.port, persist: false })
    if (api.s.redis.status !== 'ready') await once(api.s.redis, 'ready')
    // The new Redis starts its generation at 0 again, the number the rows kept in memory before the repair
    // above were filed under: a new epoch tells the two apart, so those rows are not served.
    expect((await get(stats, creator.token)).cache).toBe('analytics; fwd=miss; stored')
    expect(await get(stats, creator.token)).toMatchObject({ cache: 'analytics; hit', text: cached.stats.text })
  })
})

it('answers the versions of concurrent calls with one read, never with a read sent before a call began', async () => {
  const { createAggregateCache } = await import('./aggregate-cache.ts')
  const { AGGREGATES_LAST_LOAD_KEY, readAggregateVersions } = await import('../../lib/aggregates-generation.ts')
  const redis = api.s.redis
  await readAggregateVersions(redis) // sets the generation and its epoch if missing: each read below is then one MGET
  // The real Redis, with each MGET's reply held until released: a read in flight, seen from outside.
  let reads = 0
  const gates: (() => void)[] = []
  let onSent: (() => void) | undefined
  /** Resolves once the next MGET has gone out. */
  const nextSent = () => new Promise<void>((r) => (onSent = r))
  const held = new Proxy(redis, {
    get(target, key) {
      if (key === 'mget')
        return async (...args: string[]) => {
          reads++
          const reply = target.mget(...args) // sent now, its reply held
          const released = new Promise<void>((r) => gates.push(r))
          onSent?.()
          await released
          return reply
        }
      const v = Reflect.get(target, key, target)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  const cache = createAggregateCache(held)
  await redis.set(AGGREGATES_LAST_LOAD_KEY, 'load-1')
  let sent = nextSent()
  const first = cache.versions()
  await sent
  // A load marked while the first read is in flight: a call made now must see it.
  await redis.set(AGGREGATES_LAST_LOAD_KEY, 'load-2')
  const later = [cache.versions(), cache.versions(), cache.versions()]
  expect(reads).toBe(1) // the later calls wait for the next read, not this one
  sent = nextSent()
  gates.shift()!()
  expect((await first)?.data).toMatch(/\.load-1$/)
  await Promise.race([sent, Promise.all(later)]) // the next read goes out (had the later calls shared the first, they would be answered now)
  expect(reads).toBe(2) // one read for all three
  gates.shift()!()
  const seen = await Promise.all(later)
  expect(seen.map((v) => v?.data?.split('.').at(-1))).toEqual(['load-2', 'load-2', 'load-2'])
  await markAggregatesLoad(redis) // leave a real load id for the other tests
})
