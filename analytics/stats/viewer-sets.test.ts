import { Registry } from 'prom-client'
import { beforeEach, describe, expect, it } from 'vitest'
import { loadSettings } from '../../lib/config.ts'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { ids, insertEvents, playsBy } from '../../test/analytics/events.ts'
import { rows, type TestClickHouse, type TestRedis } from '../../test/harness/engines.ts'
import { withTestEngines } from '../../test/harness/test-engines.ts'
import { bumpAggregatesGeneration, createAggregateCache } from '../cache/aggregate-cache.ts'
import { videoStatsMany, type StatsQuery } from './queries.ts'
import { createStatsReader } from './reader.ts'
import { countingCalls } from '../../test/harness/counting.ts'
import { partBlocks } from '../../lib/table-parts.ts'
import { addUniqExactState, Uint64Set, viewerSets } from './viewer-sets.ts'

describe('Uint64Set', () => {
  it('holds what a Set of bigints holds, through growth, equal low halves and zero', () => {
    const set = new Uint64Set()
    const want = new Set<bigint>()
    let seed = 7
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0)
    for (let i = 0; i < 50_000; i++) {
      // Low halves from a small range so that many values share one, high halves likewise.
      const lo = i % 3 === 0 ? rnd() % 64 : rnd()
      const hi = i % 5 === 0 ? 0 : rnd() % 1000
      const added = set.add(lo, hi)
      const big = (BigInt(hi) << 32n) | BigInt(lo)
      expect(added).toBe(!want.has(big))
      want.add(big)
    }
    expect(set.add(0, 0)).toBe(!want.has(0n))
    want.add(0n)
    expect(set.size).toBe(want.size)
    for (const v of [...want].slice(0, 2000)) expect(set.has(Number(v & 0xffffffffn), Number(v >> 32n))).toBe(true)
    expect(set.has(123_456_789, 4_000_000_000)).toBe(false)
  })
})

describe('part names', () => {
  it('read as the blocks a part holds', () => {
    expect(partBlocks('all_1_1_0')).toEqual({ partition: 'all', min: 1, max: 1 })
    expect(partBlocks('202612_3_17_2')).toEqual({ partition: '202612', min: 3, max: 17 })
    expect(partBlocks('all_3_17_2_20')).toEqual({ partition: 'all', min: 3, max: 17 })
    expect(partBlocks('broken')).toBeNull()
    expect(partBlocks('all_9_3_1')).toBeNull()
  })
})

let engine: TestClickHouse
let redis: TestRedis
let ch: ClickHouseClient
withTestEngines((e, r) => ([engine, redis, ch] = [e, r, e.ch]))

/** The unique viewers of each row of video_stats_per_day, merged in the engine: what the sets must match. */
async function truth(video: string): Promise<Record<string, number>> {
  const found = await rows<{ day: string; n: string }>(
    ch,
    'SELECT toString(day) AS day, uniqExactMerge(unique_viewers) AS n FROM video_stats_per_day WHERE video_id = {v:String} GROUP BY day ORDER BY day',
    { v: video },
  )
  return Object.fromEntries(found.map((r) => [r.day, Number(r.n)]))
}


describe('unique viewers of open days from viewer sets', () => {
  beforeEach(async () => {
    await ch.command({ query: 'TRUNCATE TABLE raw_events' })
    for (const t of ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month']) await ch.command({ query: `TRUNCATE TABLE ${t}` })
  })

  /** Counts the states read from the engine: the `exec` of partStates (its needs' tuples; stats reads in RowBinary are other `exec`s). */
  function counting(inner: ClickHouseClient) {
    const calls = { exec: 0 }
    const client = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'exec')
          return (...args: Parameters<ClickHouseClient['exec']>) => {
            if (args[0].query.includes('{needs:')) calls.exec++
            return target.exec(...args)
          }
        return Reflect.get(target, prop, receiver)
      },
    })
    return { client, calls }
  }

  const open = (generation = 'g1', from = '2026-03-01') => ({ open: { from, generation } })
  const q = (video: string, creator: string, grain: StatsQuery['grain'] = 'day'): StatsQuery => ({ videoId: video, creatorId: creator, grain, from: '2026-03-01', to: '2026-03-03', ...open() })

  it('match the states merged in the engine across loads and merges, reading only what was loaded since', async () => {
    const sets = viewerSets({ maxViewers: 1_000_000, minViewers: 0 })
    const { client, calls } = counting(ch)
    // Three loads of overlapping viewers on two days, each its own part.
    await insertEvents(ch, playsBy('va', 'ca', '2026-03-02', ids('v', 0, 500)))
    await insertEvents(ch, playsBy('va', 'ca', '2026-03-02', ids('v', 300, 900)))
    await insertEvents(ch, [...playsBy('va', 'ca', '2026-03-02', ids('v', 850, 1000)), ...playsBy('va', 'ca', '2026-03-03', ids('v', 0, 40))])
    const [first] = await videoStatsMany(client, [q('va', 'ca')], sets)
    const want = await truth('va')
    expect(want).toEqual({ '2026-03-02': 1000, '2026-03-03': 40 })
    expect(first!.map((r) => r.unique_viewers)).toEqual([0, 1000, 40])
    expect(first![1]!.views).toBe(1250)
    expect(calls.exec).toBe(1)

    // Nothing loaded since: no state is read again.
    const [again] = await videoStatsMany(client, [q('va', 'ca')], sets)
    expect(again).toEqual(first)
    expect(calls.exec).toBe(1)

    // Merged: the merged part's blocks were all read, so it is not read either.
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const [merged] = await videoStatsMany(client, [q('va', 'ca')], sets)
    expect(merged).toEqual(first)
    expect(calls.exec).toBe(1)

    // A new load: its part only, and the count is the union's.
    await insertEvents(ch, playsBy('va', 'ca', '2026-03-02', [...ids('v', 990, 1010), ...ids('v', 0, 5)]))
    const [later] = await videoStatsMany(client, [q('va', 'ca')], sets)
    expect(calls.exec).toBe(2)
    expect(later!.map((r) => r.unique_viewers)).toEqual([0, 1010, 40])
    expect(await truth('va')).toEqual({ '2026-03-02': 1010, '2026-03-03': 40 })
    expect(sets.held().viewers).toBe(1050)
  })

  it('give the same answers as the engine for many videos, weeks and months, with sets evicted', async () => {
    // Room for fewer viewers than the videos have: sets are dropped and built again.
    const sets = viewerSets({ maxViewers: 400, minViewers: 0 })
    const videos = ['v1', 'v2', 'v3', 'v4']
    let seed = 11
    const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n
    for (let load = 0; load < 6; load++) {
      const events = videos.flatMap((v, i) => playsBy(v, `c${i % 2}`, `2026-03-0${1 + rnd(3)}`, ids('u', rnd(200), 200 + rnd(300))))
      await insertEvents(ch, events)
      if (load === 3) await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day' })
      for (const grain of ['day', 'week', 'month'] as const) {
        const qs = videos.map((v, i) => q(v, `c${i % 2}`, grain))
        const withSets = await videoStatsMany(ch, qs, sets)
        const merged = await videoStatsMany(ch, qs.map(({ open: _, ...rest }) => rest))
        expect(withSets).toEqual(merged)
      }
      expect(sets.held().viewers).toBeLessThanOrEqual(400)
    }
  })

  it('merge closed days in the engine and only open ones from sets', async () => {
    const sets = viewerSets({ maxViewers: 1_000_000, minViewers: 0 })
    await insertEvents(ch, [...playsBy('vc', 'cc', '2026-03-01', ids('x', 0, 30)), ...playsBy('vc', 'cc', '2026-03-03', ids('x', 10, 50))])
    const [answer] = await videoStatsMany(ch, [{ ...q('vc', 'cc'), open: { from: '2026-03-03', generation: 'g' } }], sets)
    expect(answer!.map((r) => r.unique_viewers)).toEqual([30, 0, 40])
    // Only the open day's set is kept.
    expect(sets.held()).toMatchObject({ sets: 1, viewers: 40 })
  })

  it('fall back to merging in the engine when a part it listed is merged away before its state is read', async () => {
    const sets = viewerSets({ maxViewers: 1_000_000, minViewers: 0 })
    await insertEvents(ch, playsBy('vm', 'cm', '2026-03-02', ids('m', 0, 100)))
    await insertEvents(ch, playsBy('vm', 'cm', '2026-03-02', ids('m', 50, 160)))
    // The engine merges between the read of the sums and parts and the read of the states.
    const racing = new Proxy(ch, {
      get(target, prop, receiver) {
        if (prop === 'exec')
          return async (...args: Parameters<ClickHouseClient['exec']>) => {
            await target.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
            return target.exec(...args)
          }
        return Reflect.get(target, prop, receiver)
      },
    })
    const [answer] = await videoStatsMany(racing, [q('vm', 'cm')], sets)
    expect(answer![1]).toMatchObject({ views: 210, unique_viewers: 160 })
    // The next read takes the merged part whole.
    const [next] = await videoStatsMany(ch, [q('vm', 'cm')], sets)
    expect(next![1]).toMatchObject({ views: 210, unique_viewers: 160 })
  })

  it('are kept only for keys that had at least minViewers unique viewers when last read', async () => {
    const sets = viewerSets({ maxViewers: 1_000_000, minViewers: 100 })
    const { client, calls } = counting(ch)
    await insertEvents(ch, [...playsBy('vbig', 'cb', '2026-03-02', ids('b', 0, 150)), ...playsBy('vsmall', 'cb', '2026-03-02', ids('s', 0, 20))])
    // First read: both merged in the engine, their sizes noted.
    const first = await videoStatsMany(client, [q('vbig', 'cb'), q('vsmall', 'cb')], sets)
    expect(first.map((rows) => rows[1]!.unique_viewers)).toEqual([150, 20])
    expect(calls.exec).toBe(0)
    expect(sets.held().sets).toBe(0)
    // Second read: the big one through a set, the small one still merged.
    await insertEvents(ch, [...playsBy('vbig', 'cb', '2026-03-02', ids('b', 140, 160)), ...playsBy('vsmall', 'cb', '2026-03-02', ids('s', 15, 25))])
    const second = await videoStatsMany(client, [q('vbig', 'cb'), q('vsmall', 'cb')], sets)
    expect(second.map((rows) => rows[1]!.unique_viewers)).toEqual([160, 25])
    expect(calls.exec).toBe(1)
    expect(sets.held()).toMatchObject({ sets: 1, viewers: 160 })
    // A new generation forgets the sizes too: merged first, then a set again.
    const g2 = (video: string) => ({ ...q(video, 'cb'), ...open('g2') })
    expect((await videoStatsMany(client, [g2('vbig')], sets))[0]![1]!.unique_viewers).toBe(160)
    expect([calls.exec, sets.held().sets]).toEqual([1, 0])
    expect((await videoStatsMany(client, [g2('vbig')], sets))[0]![1]!.unique_viewers).toBe(160)
    expect([calls.exec, sets.held().sets]).toEqual([2, 1])
  })

  it('are dropped when the aggregates generation changes', async () => {
    const sets = viewerSets({ maxViewers: 1_000_000, minViewers: 0 })
    await insertEvents(ch, playsBy('vg', 'cg', '2026-03-02', ids('g', 0, 70)))
    await videoStatsMany(ch, [q('vg', 'cg')], sets)
    expect(sets.held().viewers).toBe(70)
    // A table rewritten from scratch numbers its blocks from 1 again: what the generation bump is for.
    await ch.command({ query: 'TRUNCATE TABLE video_stats_per_day' })
    await insertEvents(ch, playsBy('vg', 'cg', '2026-03-02', ids('h', 0, 5)))
    const [answer] = await videoStatsMany(ch, [{ ...q('vg', 'cg'), ...open('g2') }], sets)
    expect(answer![1]!.unique_viewers).toBe(5)
    expect(sets.held().viewers).toBe(5)
  })

  it('let concurrent stats reads of the same rows share their query and its one write to Redis', async () => {
    const settings = loadSettings({ DATA_DIR: engine.dataDir })
    const cache = createAggregateCache(redis.client)
    const writes: unknown[] = []
    const counting = countingCalls(cache, 'setFields', writes)
    // 3 March closed (kept in Redis), 4 March open, as below.
    const now = () => new Date('2026-03-06T03:00:00Z')
    const read = createStatsReader({ ch, cache: counting, rules: settings, now, closedTtlSeconds: 60, openMaxAgeMs: 0, openViewerSetsMax: 1_000_000, openViewerSetsMin: 0 })
    await insertEvents(ch, playsBy('vw', 'cw', '2026-03-03', ids('w', 0, 12)))
    await insertEvents(ch, playsBy('vw', 'cw', '2026-03-04', ids('w', 5, 20)))
    const asked = { videoId: 'vw', creatorId: 'cw', grain: 'day', from: '2026-03-03', to: '2026-03-04' } as const
    const answers = await Promise.all(Array.from({ length: 6 }, () => read(asked)))
    expect(writes).toHaveLength(1)
    for (const a of answers) {
      expect(a.outcome).toBe('miss')
      expect(a.rows.map((r) => [r.period, r.views, r.unique_viewers])).toEqual([
        ['2026-03-03', 12, 12],
        ['2026-03-04', 15, 15],
      ])
    }
    // The closed day comes from what was written.
    expect((await read(asked)).outcome).toBe('partial')
  })

  it('serve the stats reader, keyed by the generation in Redis', async () => {
    const settings = loadSettings({ DATA_DIR: engine.dataDir })
    const cache = createAggregateCache(redis.client)
    // Noon of 6 March in Seoul: with the 48-hour lateness window 3 March is closed, 4 March open.
    const now = () => new Date('2026-03-06T03:00:00Z')
    const registry = new Registry()
    const read = createStatsReader({ ch, cache, rules: settings, now, closedTtlSeconds: 60, openMaxAgeMs: 0, openViewerSetsMax: 1_000_000, openViewerSetsMin: 0, registry })
    const gauge = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]!.value
    await insertEvents(ch, playsBy('vr', 'cr', '2026-03-04', ids('r', 0, 25)))
    const first = await read({ videoId: 'vr', creatorId: 'cr', grain: 'day', from: '2026-03-03', to: '2026-03-04' })
    expect(first.rows.map((r) => r.unique_viewers)).toEqual([0, 25])
    await insertEvents(ch, playsBy('vr', 'cr', '2026-03-04', ids('r', 20, 30)))
    const second = await read({ videoId: 'vr', creatorId: 'cr', grain: 'day', from: '2026-03-03', to: '2026-03-04' })
    expect(second.rows.map((r) => r.unique_viewers)).toEqual([0, 30])
    // Only the open day's set: 30 viewers in a table of 16 slots at least.
    expect(await gauge('cs_stats_viewer_sets_values')).toBe(30)
    expect(await gauge('cs_stats_viewer_sets_bytes')).toBeGreaterThanOrEqual(30 * 16)
    // A second reader on the same registry (two apps over one set of services) adds to the same gauges.
    const other = createStatsReader({ ch, cache, rules: settings, now, closedTtlSeconds: 60, openMaxAgeMs: 0, openViewerSetsMax: 1_000_000, openViewerSetsMin: 0, registry })
    await other({ videoId: 'vr', creatorId: 'cr', grain: 'day', from: '2026-03-04', to: '2026-03-04' })
    expect(await gauge('cs_stats_viewer_sets_values')).toBe(60)
    await bumpAggregatesGeneration(redis.client)
    const third = await read({ videoId: 'vr', creatorId: 'cr', grain: 'day', from: '2026-03-03', to: '2026-03-04' })
    expect(third.rows.map((r) => r.unique_viewers)).toEqual([0, 30])
  })
})

describe('uniqExact states read as bytes', () => {
  it('hold the values the engine counted', async () => {
    const [row] = await rows<{ n: string; hex: string }>(ch, 'SELECT uniqExact(x) AS n, hex(CAST(uniqExactState(x) AS String)) AS hex FROM (SELECT cityHash64(number % 777) AS x FROM numbers(5000))')
    const set = new Uint64Set()
    addUniqExactState(Buffer.from(row!.hex, 'hex'), set)
    expect(set.size).toBe(Number(row!.n))
    expect(set.size).toBe(777)
    expect(() => addUniqExactState(Buffer.from(row!.hex, 'hex').subarray(0, 20), new Uint64Set())).toThrow(/not a uniqExact/)
  })
})
