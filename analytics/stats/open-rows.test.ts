import { Registry } from 'prom-client'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { loadSettings } from '../../lib/config.ts'
import { ids, insertEvents, playsBy } from '../../test/analytics/events.ts'
import type { TestClickHouse, TestRedis } from '../../test/harness/engines.ts'
import { withTestEngines } from '../../test/harness/test-engines.ts'
import { bumpAggregatesGeneration, createAggregateCache, markAggregatesLoad } from '../cache/aggregate-cache.ts'
import { arrivals, type Arrivals } from '../http/arrivals.ts'
import { openRows } from './open-rows.ts'
import { advanceStatsRow, videoStatsMany, type StatsQuery, type StatsRow } from './queries.ts'
import { createStatsReader } from './reader.ts'
import { viewerSets } from './viewer-sets.ts'

let engine: TestClickHouse
let redis: TestRedis
let ch: ClickHouseClient
withTestEngines((e, r) => ([engine, redis, ch] = [e, r, e.ch]))


/** Counts the engine's queries by kind: stats reads, reads of the keys parts hold, lists of parts. */
function counting(inner: ClickHouseClient) {
  const calls = { stats: 0, keys: 0, parts: 0 }
  /** The first day the last stats read asked for. */
  const last = { from: '' }
  const client = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (params: Parameters<ClickHouseClient['query']>[0]) => {
          const text = params.query
          if (text.includes('system.parts')) calls.parts++
          else if (/WHERE _part IN \{parts/.test(text)) calls.keys++
          else {
            calls.stats++
            last.from = String((params.query_params as { from?: string }).from)
          }
          return target.query(params)
        }
      return Reflect.get(target, prop, receiver)
    },
  })
  return { client, calls, last }
}

describe('rows of open periods kept by blocks', () => {
  beforeEach(async () => {
    await ch.command({ query: 'TRUNCATE TABLE raw_events' })
    for (const t of ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month']) await ch.command({ query: `TRUNCATE TABLE ${t}` })
  })

  const q = (video: string, creator: string, loads: string, grain: StatsQuery['grain'] = 'day', generation = 'g1'): StatsQuery => ({
    videoId: video,
    creatorId: creator,
    grain,
    from: '2026-03-01',
    to: '2026-03-03',
    open: { from: '2026-03-01', generation, loads },
  })

  it('answer a video no load has touched since from memory, and read it again once one has', async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000 })
    const { client, calls, last } = counting(ch)
    await insertEvents(ch, [...playsBy('va', 'ca', '2026-03-02', ids('a', 0, 30)), ...playsBy('vb', 'cb', '2026-03-02', ids('b', 0, 10))])
    const first = await videoStatsMany(client, [q('va', 'ca', 'l1'), q('vb', 'cb', 'l1')], undefined, rows)
    expect(first.map((r) => r[1]!.views)).toEqual([30, 10])
    expect(calls).toEqual({ stats: 1, keys: 0, parts: 1 })

    // Same load version: nothing queried at all.
    expect(await videoStatsMany(client, [q('va', 'ca', 'l1'), q('vb', 'cb', 'l1')], undefined, rows)).toEqual(first)
    expect(calls).toEqual({ stats: 1, keys: 0, parts: 1 })

    // A load of vb only: va is answered after reading which keys the new part holds, vb is read again.
    await insertEvents(ch, playsBy('vb', 'cb', '2026-03-03', ids('b', 5, 25)))
    const [va] = await videoStatsMany(client, [q('va', 'ca', 'l2')], undefined, rows)
    expect(va).toEqual(first[0])
    expect(calls).toEqual({ stats: 1, keys: 1, parts: 2 })
    const [vb] = await videoStatsMany(client, [q('vb', 'cb', 'l2')], undefined, rows)
    expect(vb!.map((r) => [r.views, r.unique_viewers])).toEqual([[0, 0], [10, 10], [20, 20]])
    expect(calls).toEqual({ stats: 2, keys: 1, parts: 2 })
    // Only the day the load touched was read: the two before it were known.
    expect(last.from).toBe('2026-03-03')

    // A merge of parts both keys have seen all of: nothing queried but the list of parts.
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const after = await videoStatsMany(client, [q('va', 'ca', 'l3'), q('vb', 'cb', 'l3')], undefined, rows)
    expect(after).toEqual([va, vb])
    expect(calls).toEqual({ stats: 2, keys: 1, parts: 3 })
    expect(rows.held()).toMatchObject({ keys: 6, hits: 17, misses: 7 })
  })

  it("list the open periods' partitions only: a load into an ended day reads nothing for a kept row", async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000 })
    const { client, calls } = counting(ch)
    await insertEvents(ch, [...playsBy('va', 'ca', '2026-03-02', ids('a', 0, 30)), ...playsBy('old', 'co', '2026-02-20', ids('o', 0, 5))])
    const first = await videoStatsMany(client, [q('va', 'ca', 'l1')], undefined, rows)
    expect(calls).toEqual({ stats: 1, keys: 0, parts: 1 })
    // Late events of 20 February (ended: before the open periods' first day) make a part of that day's partition.
    await insertEvents(ch, playsBy('old', 'co', '2026-02-20', ids('o', 5, 9)))
    expect(await videoStatsMany(client, [q('va', 'ca', 'l2')], undefined, rows)).toEqual(first)
    // The list of parts is read again (a new load), and holds no part that could hold va's rows unseen.
    expect(calls).toEqual({ stats: 1, keys: 0, parts: 2 })
    expect(rows.held().partLists).toBe(0)
  })

  it('read a key again when a part that merged seen blocks with its new rows appears, or a part is too large to list', async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000 })
    const { client, calls } = counting(ch)
    await insertEvents(ch, playsBy('vm', 'cm', '2026-03-02', ids('m', 0, 40)))
    await videoStatsMany(client, [q('vm', 'cm', 'l1')], undefined, rows)
    // New rows of the key, merged with the part already read before the next read: not idempotent, so read again.
    await insertEvents(ch, playsBy('vm', 'cm', '2026-03-02', ids('m', 30, 50)))
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const [merged] = await videoStatsMany(client, [q('vm', 'cm', 'l2')], undefined, rows)
    expect(merged![1]).toMatchObject({ views: 60, unique_viewers: 50 })
    expect(calls).toEqual({ stats: 2, keys: 1, parts: 2 })

    // Parts above partKeysMaxRows are not listed: the key is read from the table.
    const small = openRows<StatsRow>({ maxKeys: 1000, partKeysMaxRows: 0 })
    await videoStatsMany(client, [q('vm', 'cm', 'l2')], undefined, small)
    await insertEvents(ch, playsBy('other', 'co', '2026-03-02', ids('o', 0, 5)))
    const [again] = await videoStatsMany(client, [q('vm', 'cm', 'l3')], undefined, small)
    expect(again![1]).toMatchObject({ views: 60, unique_viewers: 50 })
    expect(calls).toEqual({ stats: 4, keys: 1, parts: 4 })
  })

  it('do not trust the keys of a part merged away before they were read', async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000 })
    await insertEvents(ch, playsBy('vr', 'cr', '2026-03-02', ids('r', 0, 10)))
    await videoStatsMany(ch, [q('vr', 'cr', 'l1')], undefined, rows)
    await insertEvents(ch, playsBy('vr', 'cr', '2026-03-02', ids('r', 5, 15)))
    // The engine merges between the list of parts and the read of the new part's keys: the
    // read finds no rows of it, which must not count as a part without the key.
    const racing = new Proxy(ch, {
      get(target, prop, receiver) {
        if (prop === 'query')
          return async (params: Parameters<ClickHouseClient['query']>[0]) => {
            if (/WHERE _part IN \{parts/.test(params.query)) await target.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
            return target.query(params)
          }
        return Reflect.get(target, prop, receiver)
      },
    })
    const [answer] = await videoStatsMany(racing, [q('vr', 'cr', 'l2')], undefined, rows)
    expect(answer![1]).toMatchObject({ views: 20, unique_viewers: 15 })
  })

  it('advance a kept row by the new parts that hold it, with its own set or its viewer set, and read it again when that cannot be exact', async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000, advance: advanceStatsRow })
    const sets = viewerSets({ maxViewers: 1_000_000, minViewers: 20 })
    const { client, calls } = counting(ch)
    // vq: a quiet video; vbusy: 30 viewers. Loads land on the last day asked for (03-03), whose rows get sets.
    await insertEvents(ch, [...playsBy('vq', 'cq', '2026-03-03', ids('q', 0, 5)), ...playsBy('vbusy', 'cb', '2026-03-03', ids('b', 0, 30))])
    const both = (loads: string) => videoStatsMany(client, [q('vq', 'cq', loads), q('vbusy', 'cb', loads)], sets, rows)
    await both('l1')
    // A key's first read takes no state along: a load that touches it has it read again, vq
    // with its own state (5 viewers), vbusy through a viewer set (30, at least minViewers).
    await insertEvents(ch, [...playsBy('vq', 'cq', '2026-03-03', ids('q', 0, 1)), ...playsBy('vbusy', 'cb', '2026-03-03', ids('b', 25, 31))])
    await both('l2')
    expect(calls).toMatchObject({ stats: 3, keys: 1 })
    expect(rows.held()).toMatchObject({ advanced: 0, viewers: 5 })
    // Repeat viewers and new ones, over two loads; each load's part is read once for every key.
    await insertEvents(ch, [...playsBy('vq', 'cq', '2026-03-03', ids('q', 3, 8)), ...playsBy('vbusy', 'cb', '2026-03-03', ids('b', 0, 4))])
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-03', ids('q', 0, 2)))
    const [vq, vbusy] = await both('l3')
    expect(calls).toMatchObject({ stats: 3, keys: 2 })
    const want = async (...qs: StatsQuery[]) => videoStatsMany(ch, qs.map(({ open: _, ...rest }) => rest))
    expect([vq, vbusy]).toEqual(await want(q('vq', 'cq', 'l3'), q('vbusy', 'cb', 'l3')))
    expect(vq!.map((r) => [r.views, r.unique_viewers])).toEqual([[0, 0], [0, 0], [13, 8]])
    expect(vbusy![2]).toMatchObject({ views: 40, unique_viewers: 31 })
    expect(rows.held()).toMatchObject({ advanced: 2, viewers: 8 })

    // A part that merged seen blocks with new ones adds the rows of the new blocks' part, known
    // from a read of another key before the merge (kept once merged away).
    await insertEvents(ch, [...playsBy('vq', 'cq', '2026-03-03', ids('q', 8, 10)), ...playsBy('vbusy', 'cb', '2026-03-03', ids('b', 31, 33))])
    await videoStatsMany(client, [q('vbusy', 'cb', 'l4')], sets, rows)
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const [afterMerge] = await videoStatsMany(client, [q('vq', 'cq', 'l5')], sets, rows)
    expect(afterMerge).toEqual((await want(q('vq', 'cq', 'l5')))[0])
    expect(afterMerge![2]).toMatchObject({ views: 15, unique_viewers: 10 })
    expect(calls).toMatchObject({ stats: 3, keys: 4 })

    // New rows merged with seen blocks before any read saw their part: the merged part's row
    // less the rows of the known parts that held the seen blocks.
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-03', ids('q', 10, 11)))
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const [merged] = await videoStatsMany(client, [q('vq', 'cq', 'l6')], sets, rows)
    expect(merged).toEqual((await want(q('vq', 'cq', 'l6')))[0])
    expect(merged![2]).toMatchObject({ views: 16, unique_viewers: 11 })
    expect(calls.stats).toBe(3)
    // Where neither is known (a store whose row came from its first read), a query.
    const fresh = openRows<StatsRow>({ maxKeys: 1000, advance: advanceStatsRow })
    await videoStatsMany(client, [q('vq', 'cq', 'l6')], undefined, fresh)
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-03', ids('q', 11, 12)))
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const [unknown] = await videoStatsMany(client, [q('vq', 'cq', 'l7')], undefined, fresh)
    expect(unknown![2]).toMatchObject({ views: 17, unique_viewers: 12 })
    expect(calls.stats).toBe(5)

    // An earlier open day's state is not taken along, but a day without rows has an empty one: advanced too.
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-02', ids('q', 0, 2)))
    const [earlier] = await videoStatsMany(client, [q('vq', 'cq', 'l8')], sets, rows)
    expect(earlier).toEqual((await want(q('vq', 'cq', 'l8')))[0])
    expect(earlier![1]).toMatchObject({ views: 2, unique_viewers: 2 })
    expect(calls.stats).toBe(5)

    // Through a viewer set (every key gets one here): the next load advances the row and the set it shares.
    await ch.command({ query: 'TRUNCATE TABLE video_stats_per_day' })
    const every = viewerSets({ maxViewers: 1_000_000, minViewers: 0 })
    await insertEvents(ch, playsBy('vbusy', 'cb', '2026-03-03', ids('b', 0, 36)))
    const g2 = (loads: string): StatsQuery => q('vbusy', 'cb', loads, 'day', 'g2')
    await videoStatsMany(client, [g2('l5')], every, rows)
    expect(every.held()).toMatchObject({ sets: 1, viewers: 36 })
    await insertEvents(ch, playsBy('vbusy', 'cb', '2026-03-03', ids('b', 30, 45)))
    const stats = calls.stats
    const [busy] = await videoStatsMany(client, [g2('l6')], every, rows)
    expect(busy![2]).toMatchObject({ views: 51, unique_viewers: 45 })
    expect(calls.stats).toBe(stats)
    expect(every.held()).toMatchObject({ sets: 1, viewers: 45 })

    // Without room for a set of its own, a row a load touched is read again.
    const noRoom = openRows<StatsRow>({ maxKeys: 1000, advance: advanceStatsRow, maxViewers: 0 })
    await videoStatsMany(client, [q('vq', 'cq', 'l7', 'day', 'g2')], undefined, noRoom)
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-03', ids('q', 0, 3)))
    const [again] = await videoStatsMany(client, [q('vq', 'cq', 'l8', 'day', 'g2')], undefined, noRoom)
    expect(again![2]).toMatchObject({ views: 3, unique_viewers: 3 })
    expect(noRoom.held()).toMatchObject({ advanced: 0, viewers: 0 })
  })

  it('give the engine answers across random loads and merges, for days, weeks and months, with and without viewer sets, and evicted', async () => {
    const videos = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6']
    const stores = [
      { rows: openRows<StatsRow>({ maxKeys: 1000 }), sets: undefined },
      { rows: openRows<StatsRow>({ maxKeys: 5 }), sets: viewerSets({ maxViewers: 300, minViewers: 0 }) },
      { rows: openRows<StatsRow>({ maxKeys: 1000, partKeysMaxRows: 3 }), sets: viewerSets({ maxViewers: 1_000_000, minViewers: 50 }) },
      // Rows advanced by new parts: with sets of their own (some dropped for room), and with viewer sets shared.
      { rows: openRows<StatsRow>({ maxKeys: 1000, advance: advanceStatsRow, maxViewers: 3000 }), sets: undefined },
      { rows: openRows<StatsRow>({ maxKeys: 1000, advance: advanceStatsRow }), sets: viewerSets({ maxViewers: 1_000_000, minViewers: 100 }) },
      { rows: openRows<StatsRow>({ maxKeys: 4, advance: advanceStatsRow }), sets: viewerSets({ maxViewers: 250, minViewers: 0 }) },
    ]
    let seed = 5
    const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n
    for (let load = 0; load < 10; load++) {
      // Each load touches two or three of the videos.
      const touched = videos.filter(() => rnd(2) === 0).slice(0, 3)
      await insertEvents(ch, touched.flatMap((v, i) => playsBy(v, `c${i % 2}`, `2026-03-0${1 + rnd(3)}`, ids('u', rnd(100), 100 + rnd(150)))))
      if (load % 4 === 3) await ch.command({ query: `OPTIMIZE TABLE video_stats_per_day${load === 7 ? ' FINAL' : ''}` })
      for (const grain of ['day', 'week', 'month'] as const) {
        const qs = videos.map((v, i) => q(v, `c${i % 2}`, `l${load}`, grain))
        const want = await videoStatsMany(ch, qs.map(({ open: _, ...rest }) => rest))
        for (const s of stores) {
          expect(await videoStatsMany(ch, qs, s.sets, s.rows)).toEqual(want)
          // Read twice: the second from what the first kept.
          expect(await videoStatsMany(ch, qs, s.sets, s.rows)).toEqual(want)
        }
      }
    }
    expect(stores[0]!.rows.held().hits).toBeGreaterThan(0)
    expect(stores[1]!.rows.held().keys).toBeLessThanOrEqual(5)
    // (The last store's sets are mostly dropped for room: its rows are read again, exact either way.)
    expect(stores.slice(3, 5).map((s) => s.rows.held().advanced > 0)).toEqual([true, true])
    expect(stores[3]!.rows.held().viewers).toBeLessThanOrEqual(3000)
  })

  it('are dropped under a new generation', async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000 })
    const { client, calls } = counting(ch)
    await insertEvents(ch, playsBy('vg', 'cg', '2026-03-02', ids('g', 0, 7)))
    await videoStatsMany(client, [q('vg', 'cg', 'l1')], undefined, rows)
    // A rewritten table numbers its blocks from 1 again: the old rows' blocks would cover it.
    await ch.command({ query: 'TRUNCATE TABLE video_stats_per_day' })
    await insertEvents(ch, playsBy('vg', 'cg', '2026-03-02', ids('h', 0, 3)))
    const [answer] = await videoStatsMany(client, [q('vg', 'cg', 'l1', 'day', 'g2')], undefined, rows)
    expect(answer![1]).toMatchObject({ views: 3, unique_viewers: 3 })
    expect(calls.stats).toBe(2)
  })

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
    expect(await ask()).toEqual([0, 4])
    const queried = calls.stats
    expect(await ask()).toEqual([0, 4])
    expect(calls.stats).toBe(queried)
    // The edge marks each load once it has landed: the next read sees it. The first read took
    // no unique-viewer state along, so the day the load touched is read again, with its state...
    await insertEvents(ch, playsBy('vs', 'cs', '2026-03-05', ids('s', 10, 13)))
    await markAggregatesLoad(redis.client)
    expect(await ask()).toEqual([0, 7])
    expect(calls.stats).toBe(queried + 1)
    // ...and the next load advances it by the new part.
    await insertEvents(ch, playsBy('vs', 'cs', '2026-03-05', ids('s', 2, 6)))
    await markAggregatesLoad(redis.client)
    expect(await ask()).toEqual([0, 11])
    expect(calls.stats).toBe(queried + 1)
    // Two open days a read: the first read missed both, the second found both, the third found
    // one and read the other again, the fourth found one as kept and advanced the other.
    const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values.map((v) => [v.labels.outcome ?? '', v.value])
    expect(await metric('cs_stats_open_rows')).toEqual([['', 2]])
    expect(await metric('cs_stats_open_rows_viewers')).toEqual([['', 9]])
    expect(await metric('cs_stats_open_rows_answers_total')).toEqual([['hit', 4], ['advanced', 1], ['miss', 3]])
    await bumpAggregatesGeneration(redis.client)
    expect(await ask()).toEqual([0, 11])
  })
})

describe('prepare', () => {
  it("reads the versions and the table's parts ahead of the read, which then reads them no more", async () => {
    await ch.command({ query: 'TRUNCATE TABLE raw_events' })
    for (const t of ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month']) await ch.command({ query: `TRUNCATE TABLE ${t}` })
    await insertEvents(ch, playsBy('pa', 'cp', '2026-03-05', ids('p', 0, 3)))
    const settings = loadSettings({ DATA_DIR: engine.dataDir })
    const inner = createAggregateCache(redis.client)
    let versionReads = 0
    const cache = { ...inner, versions: () => (versionReads++, inner.versions()) }
    await markAggregatesLoad(redis.client)
    const now = () => new Date('2026-03-06T03:00:00Z')
    const { client, calls } = counting(ch)
    const read = createStatsReader({ ch: client, cache, rules: settings, now, closedTtlSeconds: 0, openMaxAgeMs: 1_000, openRowsMax: 1000 })
    const prepared = read.prepare('day')
    await vi.waitFor(() => expect(calls.parts).toBe(1))
    const { rows } = await read({ videoId: 'pa', creatorId: 'cp', grain: 'day', from: '2026-03-04', to: '2026-03-05' }, undefined, prepared)
    // The read used the versions prepare read: one round trip for both.
    expect({ views: rows.map((r) => r.views), parts: calls.parts, stats: calls.stats, versionReads }).toEqual({ views: [0, 3], parts: 1, stats: 1, versionReads: 1 })
    // A load since: the read lists the parts again.
    await markAggregatesLoad(redis.client)
    await read({ videoId: 'pa', creatorId: 'cp', grain: 'day', from: '2026-03-04', to: '2026-03-05' })
    expect(calls.parts).toBe(2)
    // Years are read without kept rows: nothing to prepare. (What prepare starts runs as its versions
    // arrive, before this test's own wait on them resumes.)
    await read.prepare('year').versions
    expect(calls.parts).toBe(2)
  })
})

describe('a burst of stats reads', () => {
  it('goes as one query when its reads hand back their tickets as they join, though spread over more than the gather', async () => {
    await ch.command({ query: 'TRUNCATE TABLE raw_events' })
    for (const t of ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month']) await ch.command({ query: `TRUNCATE TABLE ${t}` })
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
