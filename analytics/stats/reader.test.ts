import { Registry } from 'prom-client'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { loadSettings } from '../../lib/config.ts'
import { countingQueries as counting } from '../../test/analytics/counting.ts'
import { ids, insertEvents, playsBy } from '../../test/analytics/events.ts'
import type { TestClickHouse, TestRedis } from '../../test/harness/engines.ts'
import { withTestEngines } from '../../test/harness/test-engines.ts'
import { bumpAggregatesGeneration, createAggregateCache, markAggregatesLoad } from '../cache/aggregate-cache.ts'
import { arrivals, type Arrivals } from '../http/arrivals.ts'
import { createStatsReader, type Prepared } from './reader.ts'

let engine: TestClickHouse
let redis: TestRedis
let ch: ClickHouseClient
withTestEngines((e, r) => ([engine, redis, ch] = [e, r, e.ch]))

beforeEach(async () => {
  await ch.command({ query: 'TRUNCATE TABLE raw_events' })
  for (const t of ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month']) await ch.command({ query: `TRUNCATE TABLE ${t}` })
})

describe('the stats reader with rows of open periods kept', () => {
  it('serve the stats reader as fresh as the load marks', async () => {
    const settings = loadSettings({ DATA_DIR: engine.dataDir })
    const cache = createAggregateCache(redis.client)
    const now = () => new Date('2026-03-06T03:00:00Z')
    const { client, calls } = counting(ch)
    const registry = new Registry()
    const read = createStatsReader({ ch: client, cache, rules: settings, now, closedTtlSeconds: 60, openMaxAgeMs: 0, openRowsMax: 1000, openRowsViewersMax: 1000, registry })
    const ask = async () => (await read({ videoId: 'vs', creatorId: 'cs', grain: 'day', from: '2026-03-04', to: '2026-03-05' })).rows.map((r) => r.views)
    await insertEvents(ch, playsBy('vs', 'cs', '2026-03-05', ids('s', 0, 4)))
    await markAggregatesLoad(redis.client)
    // The first read only notes the keys, the second keeps their rows; the third queries nothing.
    expect(await ask()).toEqual([0, 4])
    expect(await ask()).toEqual([0, 4])
    const queried = calls.stats
    expect(queried).toBe(2)
    expect(await ask()).toEqual([0, 4])
    expect(calls.stats).toBe(queried)
    // The edge marks each load once it has landed: the next read sees it. The read that kept the
    // rows took no unique-viewer state along, so the day the load touched is read again, with its state...
    await insertEvents(ch, playsBy('vs', 'cs', '2026-03-05', ids('s', 10, 13)))
    await markAggregatesLoad(redis.client)
    expect(await ask()).toEqual([0, 7])
    expect(calls.stats).toBe(queried + 1)
    // ...and the next load advances it by the new part.
    await insertEvents(ch, playsBy('vs', 'cs', '2026-03-05', ids('s', 2, 6)))
    await markAggregatesLoad(redis.client)
    expect(await ask()).toEqual([0, 11])
    expect(calls.stats).toBe(queried + 1)
    // Two open days a read: the first read looked nothing up, the second missed both, the third
    // found both, the fourth found one and read the other again, the fifth found one as kept and
    // advanced the other.
    const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values.map((v) => [v.labels.outcome ?? '', v.value])
    expect(await metric('cs_stats_open_rows')).toEqual([['', 2]])
    expect(await metric('cs_stats_open_rows_viewers')).toEqual([['', 9]])
    expect(await metric('cs_stats_open_rows_answers_total')).toEqual([['hit', 4], ['advanced', 1], ['miss', 3]])
    await bumpAggregatesGeneration(redis.client)
    expect(await ask()).toEqual([0, 11])
  })
})

describe('prepare', () => {
  it("reads the versions, and the table's parts once a key of it was read, ahead of the read, which then reads them no more", async () => {
    await insertEvents(ch, playsBy('pa', 'cp', '2026-03-05', ids('p', 0, 3)))
    const settings = loadSettings({ DATA_DIR: engine.dataDir })
    const inner = createAggregateCache(redis.client)
    let versionReads = 0
    const cache = { ...inner, versions: () => (versionReads++, inner.versions()) }
    await markAggregatesLoad(redis.client)
    const now = () => new Date('2026-03-06T03:00:00Z')
    const { client, calls } = counting(ch)
    const read = createStatsReader({ ch: client, cache, rules: settings, now, closedTtlSeconds: 0, openMaxAgeMs: 1_000, openRowsMax: 1000 })
    const ask = async (prepared?: Prepared, from = '2026-03-04') => (await read({ videoId: 'pa', creatorId: 'cp', grain: 'day', from, to: '2026-03-05' }, undefined, prepared)).rows.map((r) => r.views)
    const seen = () => ({ parts: calls.parts, stats: calls.stats, versionReads })
    // No key of the table read yet under this generation (a start, or a rewrite of the tables):
    // nothing is listed ahead, and the read queries the rows alone. (What prepare starts runs as
    // its versions arrive, before this test's own wait on them resumes.)
    const cold = read.prepare('day')
    await cold.versions
    expect(calls.parts).toBe(0)
    expect({ views: await ask(cold), ...seen() }).toEqual({ views: [0, 3], parts: 0, stats: 1, versionReads: 1 })
    // Read before: the parts are listed ahead, and the read (of another range: not the answer
    // just queried, reused) uses that list and the versions prepare read (one round trip for both).
    const prepared = read.prepare('day')
    await vi.waitFor(() => expect(calls.parts).toBe(1))
    expect({ views: await ask(prepared, '2026-03-05'), ...seen() }).toEqual({ views: [3], parts: 1, stats: 2, versionReads: 2 })
    // A load since: the read lists the parts again.
    await markAggregatesLoad(redis.client)
    await ask()
    expect(calls.parts).toBe(2)
    // Years are read without kept rows: nothing to prepare.
    await read.prepare('year').versions
    expect(calls.parts).toBe(2)
    // A new generation (a rewrite of the tables): nothing read under it yet, nothing listed ahead.
    await bumpAggregatesGeneration(redis.client)
    await read.prepare('day').versions
    expect(calls.parts).toBe(2)
  })
})

describe('prepare with the video and range ahead', () => {
  it("reads the video's cached rows of closed periods ahead of the read, which reads them no more; another range reads its own", async () => {
    await insertEvents(ch, [...playsBy('ra', 'cr', '2026-03-02', ids('r', 0, 2)), ...playsBy('ra', 'cr', '2026-03-05', ids('r', 0, 3))])
    const settings = loadSettings({ DATA_DIR: engine.dataDir })
    const inner = createAggregateCache(redis.client)
    // Long after: every day asked for is closed.
    const now = () => new Date('2026-04-01T03:00:00Z')
    const reader = () => {
      const fieldReads: string[] = []
      const cache = { ...inner, getFields: (key: string, fields: string[]) => (fieldReads.push(key), inner.getFields(key, fields)) }
      const { client, calls } = counting(ch)
      return { read: createStatsReader({ ch: client, cache, rules: settings, now, closedTtlSeconds: 60, openMaxAgeMs: 0 }), fieldReads, calls }
    }
    const range = { videoId: 'ra', grain: 'day' as const, from: '2026-03-01', to: '2026-03-05' }
    const views = (a: { rows: { views: number }[] }) => a.rows.map((r) => r.views)
    // A first process reads the range: its days, all closed, go to Redis (written after the answer).
    const first = reader()
    expect(views(await first.read({ ...range, creatorId: 'cr' }))).toEqual([0, 2, 0, 0, 3])
    await vi.waitFor(async () => expect((await redis.client.keys('*stats:ra:day')).length).toBe(1))
    // Another process, nothing held in memory: prepare reads the closed days from Redis at once,
    // keyed by the video alone (its creator not known yet), and the read then takes them from there.
    const second = reader()
    const prepared = second.read.prepare('day', { videoId: 'ra', from: range.from, to: range.to })
    expect((await prepared.closed!.found)?.size).toBe(5)
    expect(second.fieldReads).toEqual([expect.stringMatching(/stats:ra:day$/)])
    const answer = await second.read({ ...range, creatorId: 'cr' }, undefined, prepared)
    expect({ views: views(answer), outcome: answer.outcome, fieldReads: second.fieldReads.length, queries: second.calls.stats }).toEqual({ views: [0, 2, 0, 0, 3], outcome: 'hit', fieldReads: 1, queries: 0 })
    // Prepared for another range (or video), in a third process: the read reads its own.
    const third = reader()
    const other = third.read.prepare('day', { videoId: 'ra', from: '2026-03-02', to: range.to })
    expect(views(await third.read({ ...range, creatorId: 'cr' }, undefined, other))).toEqual([0, 2, 0, 0, 3])
    expect(third.fieldReads.length).toBe(2)
    // Nothing held for a video Redis has nothing of (one never read, or that does not exist).
    const none = third.read.prepare('day', { videoId: 'no-such-video', from: range.from, to: range.to })
    expect((await none.closed!.found)?.size).toBe(0)
  })
})

describe('a burst of stats reads', () => {
  it('goes as one query when its reads hand back their tickets as they join, though spread over more than the gather', async () => {
    await insertEvents(ch, [...playsBy('ba', 'cb', '2026-03-05', ids('a', 0, 3)), ...playsBy('bb', 'cb', '2026-03-05', ids('b', 0, 2)), ...playsBy('bc', 'cb', '2026-03-05', ids('c', 0, 1))])
    const settings = loadSettings({ DATA_DIR: engine.dataDir })
    const cache = createAggregateCache(redis.client)
    const now = () => new Date('2026-03-06T03:00:00Z')
    const reader = (client: ClickHouseClient, onTheWay?: Arrivals) =>
      createStatsReader({ ch: client, cache, rules: settings, now, closedTtlSeconds: 0, openMaxAgeMs: 0, batchGatherMs: 3, onTheWay, batchGatherMaxMs: 1_000 })
    const videos = ['ba', 'bb', 'bc']
    const ask = (read: ReturnType<typeof reader>, video: string, joined?: () => void) =>
      read({ videoId: video, creatorId: 'cb', grain: 'day', from: '2026-03-04', to: '2026-03-05' }, joined).then(({ rows }) => rows.map((r) => r.views))

    // Without tickets, each read starting once the query before it has started: three queries.
    const alone = counting(ch)
    const readAlone = reader(alone.client)
    const answers = await Promise.all(
      videos.map(async (video, i) => {
        await vi.waitFor(() => expect(alone.calls.stats).toBeGreaterThanOrEqual(i))
        return ask(readAlone, video)
      }),
    )
    expect({ answers, queries: alone.calls.stats }).toEqual({ answers: [[0, 3], [0, 2], [0, 1]], queries: 3 })

    // With a ticket each, taken at once, each read starting once the one before has joined the
    // batch and the batch's 3 ms gather has run out (the timers faked: no time passes but what
    // the test moves on): one query.
    const onTheWay = arrivals()
    const together = counting(ch)
    const read = reader(together.client, onTheWay)
    const tickets = videos.map(() => onTheWay.take())
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const asked: Promise<number[]>[] = []
      for (const [i, video] of videos.entries()) {
        await new Promise<void>((joined) =>
          asked.push(
            ask(read, video, () => {
              tickets[i]!()
              joined()
            }),
          ),
        )
        // Once the reactions queued as it joined have run (its batch's gather timer set), the gather
        // runs out, and what follows from that runs before the next read starts.
        await new Promise((r) => setImmediate(r))
        vi.advanceTimersByTime(3)
        await new Promise((r) => setImmediate(r))
      }
      expect({ answers: await Promise.all(asked), queries: together.calls.stats, out: onTheWay.out }).toEqual({ answers: [[0, 3], [0, 2], [0, 1]], queries: 1, out: 0 })
    } finally {
      vi.useRealTimers()
    }
  })
})
