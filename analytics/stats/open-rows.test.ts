import { beforeEach, describe, expect, it } from 'vitest'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { countingQueries as counting } from '../../test/analytics/counting.ts'
import { ids, insertEvents, playsBy } from '../../test/analytics/events.ts'
import { withTestEngines } from '../../test/harness/test-engines.ts'
import { openRows, type OpenRows } from './open-rows.ts'
import { advanceStatsRow, videoStatsMany, type StatsQuery, type StatsRow } from './queries.ts'
import { viewerSets, type ViewerSets } from './viewer-sets.ts'

let ch: ClickHouseClient
withTestEngines((e) => (ch = e.ch))

/**
 * Reads `qs` twice, so that `rows` keeps them: a key's first read, with no list of the
 * table's parts at hand, only notes it (see openPeriods).
 */
async function readTwice(client: ClickHouseClient, qs: StatsQuery[], sets: ViewerSets | undefined, rows: OpenRows<StatsRow>) {
  await videoStatsMany(client, qs, sets, rows)
  return videoStatsMany(client, qs, sets, rows)
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
    // Keys never read, and no list of parts at hand: their rows alone are queried, and the keys noted.
    expect(calls).toEqual({ stats: 1, keys: 0, parts: 0 })
    expect(rows.held()).toMatchObject({ keys: 0, misses: 0 })

    // Read again: the list of parts first, then the rows, kept by the blocks they were read from.
    expect(await videoStatsMany(client, [q('va', 'ca', 'l1'), q('vb', 'cb', 'l1')], undefined, rows)).toEqual(first)
    expect(calls).toEqual({ stats: 2, keys: 0, parts: 1 })
    // Same load version: nothing queried at all.
    expect(await videoStatsMany(client, [q('va', 'ca', 'l1'), q('vb', 'cb', 'l1')], undefined, rows)).toEqual(first)
    expect(calls).toEqual({ stats: 2, keys: 0, parts: 1 })

    // A load of vb only: va is answered after reading which keys the new part holds, vb is read again.
    await insertEvents(ch, playsBy('vb', 'cb', '2026-03-03', ids('b', 5, 25)))
    const [va] = await videoStatsMany(client, [q('va', 'ca', 'l2')], undefined, rows)
    expect(va).toEqual(first[0])
    expect(calls).toEqual({ stats: 2, keys: 1, parts: 2 })
    const [vb] = await videoStatsMany(client, [q('vb', 'cb', 'l2')], undefined, rows)
    expect(vb!.map((r) => [r.views, r.unique_viewers])).toEqual([[0, 0], [10, 10], [20, 20]])
    expect(calls).toEqual({ stats: 3, keys: 1, parts: 2 })
    // Only the day the load touched was read: the two before it were known.
    expect(last.from).toBe('2026-03-03')

    // A merge of parts both keys have seen all of: nothing queried but the list of parts.
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const after = await videoStatsMany(client, [q('va', 'ca', 'l3'), q('vb', 'cb', 'l3')], undefined, rows)
    expect(after).toEqual([va, vb])
    expect(calls).toEqual({ stats: 3, keys: 1, parts: 3 })
    expect(rows.held()).toMatchObject({ keys: 6, hits: 17, misses: 7 })
  })

  it('keep a key on its first read when the list of parts is at hand (read for another key under the same load version)', async () => {
    // A clock that does not move: the list read for va stays fresh.
    const rows = openRows<StatsRow>({ maxKeys: 1000, now: () => 0 })
    const { client, calls } = counting(ch)
    await insertEvents(ch, [...playsBy('va', 'ca', '2026-03-02', ids('a', 0, 3)), ...playsBy('vc', 'cc', '2026-03-03', ids('c', 0, 2))])
    await readTwice(client, [q('va', 'ca', 'l1')], undefined, rows)
    expect(calls).toEqual({ stats: 2, keys: 0, parts: 1 })
    const [vc] = await videoStatsMany(client, [q('vc', 'cc', 'l1')], undefined, rows)
    expect(vc!.map((r) => r.views)).toEqual([0, 0, 2])
    expect(await videoStatsMany(client, [q('vc', 'cc', 'l1')], undefined, rows)).toEqual([vc])
    expect(calls).toEqual({ stats: 3, keys: 0, parts: 1 })
    // Under a new load version the list is not at hand: a key never read is noted, not kept.
    const [vd] = await videoStatsMany(client, [q('vd', 'cd', 'l2')], undefined, rows)
    expect(vd!.map((r) => r.views)).toEqual([0, 0, 0])
    expect(calls).toEqual({ stats: 4, keys: 0, parts: 1 })
    expect(rows.held()).toMatchObject({ keys: 6 })
  })

  it("keep a busy key on its second read without building its viewer set, built once a load touches the kept row", async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000, advance: advanceStatsRow })
    const sets = viewerSets({ maxViewers: 1_000_000, minViewers: 20 })
    await insertEvents(ch, playsBy('vbusy', 'cb', '2026-03-03', ids('b', 0, 30)))
    const read = (loads: string) => videoStatsMany(ch, [q('vbusy', 'cb', loads)], sets, rows)
    // First read: noted (30 viewers, at least minViewers); second: merged and kept, no set built.
    await readTwice(ch, [q('vbusy', 'cb', 'l1')], sets, rows)
    expect({ kept: rows.held().keys, sets: sets.held().sets }).toEqual({ kept: 3, sets: 0 })
    // A load touches the kept row: read through a viewer set, then advanced by the next load.
    await insertEvents(ch, playsBy('vbusy', 'cb', '2026-03-03', ids('b', 25, 35)))
    expect((await read('l2'))[0]![2]).toMatchObject({ views: 40, unique_viewers: 35 })
    expect(sets.held()).toMatchObject({ sets: 1, viewers: 35 })
    await insertEvents(ch, playsBy('vbusy', 'cb', '2026-03-03', ids('b', 30, 40)))
    expect((await read('l3'))[0]![2]).toMatchObject({ views: 50, unique_viewers: 40 })
    expect(rows.held().advanced).toBe(1)
  })

  it("list the open periods' partitions only: a load into an ended day reads nothing for a kept row", async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000 })
    const { client, calls } = counting(ch)
    await insertEvents(ch, [...playsBy('va', 'ca', '2026-03-02', ids('a', 0, 30)), ...playsBy('old', 'co', '2026-02-20', ids('o', 0, 5))])
    await videoStatsMany(client, [q('va', 'ca', 'l1')], undefined, rows)
    const first = await videoStatsMany(client, [q('va', 'ca', 'l1')], undefined, rows)
    expect(calls).toEqual({ stats: 2, keys: 0, parts: 1 })
    // Late events of 20 February (ended: before the open periods' first day) make a part of that day's partition.
    await insertEvents(ch, playsBy('old', 'co', '2026-02-20', ids('o', 5, 9)))
    expect(await videoStatsMany(client, [q('va', 'ca', 'l2')], undefined, rows)).toEqual(first)
    // The list of parts is read again (a new load), and holds no part that could hold va's rows unseen.
    expect(calls).toEqual({ stats: 2, keys: 0, parts: 2 })
    expect(rows.held().partLists).toBe(0)
  })

  it('read a key again when a part that merged seen blocks with its new rows appears, or a part is too large to list', async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000 })
    const { client, calls } = counting(ch)
    await insertEvents(ch, playsBy('vm', 'cm', '2026-03-02', ids('m', 0, 40)))
    await readTwice(client, [q('vm', 'cm', 'l1')], undefined, rows)
    // New rows of the key, merged with the part already read before the next read: not idempotent, so read again.
    await insertEvents(ch, playsBy('vm', 'cm', '2026-03-02', ids('m', 30, 50)))
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const [merged] = await videoStatsMany(client, [q('vm', 'cm', 'l2')], undefined, rows)
    expect(merged![1]).toMatchObject({ views: 60, unique_viewers: 50 })
    expect(calls).toEqual({ stats: 3, keys: 1, parts: 2 })

    // Parts above partKeysMaxRows are not listed: the key is read from the table.
    const small = openRows<StatsRow>({ maxKeys: 1000, partKeysMaxRows: 0 })
    await readTwice(client, [q('vm', 'cm', 'l2')], undefined, small)
    await insertEvents(ch, playsBy('other', 'co', '2026-03-02', ids('o', 0, 5)))
    const [again] = await videoStatsMany(client, [q('vm', 'cm', 'l3')], undefined, small)
    expect(again![1]).toMatchObject({ views: 60, unique_viewers: 50 })
    expect(calls).toEqual({ stats: 6, keys: 1, parts: 4 })
  })

  it('do not trust the keys of a part merged away before they were read', async () => {
    const rows = openRows<StatsRow>({ maxKeys: 1000 })
    await insertEvents(ch, playsBy('vr', 'cr', '2026-03-02', ids('r', 0, 10)))
    await readTwice(ch, [q('vr', 'cr', 'l1')], undefined, rows)
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
    // A key's first read only notes it (no list of parts at hand), its second keeps its row:
    // neither takes a state along.
    await both('l1')
    await both('l1')
    const kept = calls.stats
    // A load that touches a kept row has it read again, vq with its own state (5 viewers), vbusy
    // through a viewer set (30, at least minViewers).
    await insertEvents(ch, [...playsBy('vq', 'cq', '2026-03-03', ids('q', 0, 1)), ...playsBy('vbusy', 'cb', '2026-03-03', ids('b', 25, 31))])
    await both('l2')
    expect(calls).toMatchObject({ stats: kept + 2, keys: 1 })
    expect(rows.held()).toMatchObject({ advanced: 0, viewers: 5 })
    // Repeat viewers and new ones, over two loads; each load's part is read once for every key.
    await insertEvents(ch, [...playsBy('vq', 'cq', '2026-03-03', ids('q', 3, 8)), ...playsBy('vbusy', 'cb', '2026-03-03', ids('b', 0, 4))])
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-03', ids('q', 0, 2)))
    const [vq, vbusy] = await both('l3')
    expect(calls).toMatchObject({ stats: kept + 2, keys: 2 })
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
    expect(calls).toMatchObject({ stats: kept + 2, keys: 4 })

    // New rows merged with seen blocks before any read saw their part: the merged part's row
    // less the rows of the known parts that held the seen blocks.
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-03', ids('q', 10, 11)))
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const [merged] = await videoStatsMany(client, [q('vq', 'cq', 'l6')], sets, rows)
    expect(merged).toEqual((await want(q('vq', 'cq', 'l6')))[0])
    expect(merged![2]).toMatchObject({ views: 16, unique_viewers: 11 })
    expect(calls.stats).toBe(kept + 2)
    // Where neither is known (a store whose row came from a read of its own, without the parts' rows), a query.
    const fresh = openRows<StatsRow>({ maxKeys: 1000, advance: advanceStatsRow })
    await readTwice(client, [q('vq', 'cq', 'l6')], undefined, fresh)
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-03', ids('q', 11, 12)))
    await ch.command({ query: 'OPTIMIZE TABLE video_stats_per_day FINAL' })
    const [unknown] = await videoStatsMany(client, [q('vq', 'cq', 'l7')], undefined, fresh)
    expect(unknown![2]).toMatchObject({ views: 17, unique_viewers: 12 })
    expect(calls.stats).toBe(kept + 5)

    // An earlier open day's state is not taken along, but a day without rows has an empty one: advanced too.
    await insertEvents(ch, playsBy('vq', 'cq', '2026-03-02', ids('q', 0, 2)))
    const [earlier] = await videoStatsMany(client, [q('vq', 'cq', 'l8')], sets, rows)
    expect(earlier).toEqual((await want(q('vq', 'cq', 'l8')))[0])
    expect(earlier![1]).toMatchObject({ views: 2, unique_viewers: 2 })
    expect(calls.stats).toBe(kept + 5)

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
    await readTwice(client, [q('vq', 'cq', 'l7', 'day', 'g2')], undefined, noRoom)
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
    await readTwice(client, [q('vg', 'cg', 'l1')], undefined, rows)
    // A rewritten table numbers its blocks from 1 again: the old rows' blocks would cover it.
    await ch.command({ query: 'TRUNCATE TABLE video_stats_per_day' })
    await insertEvents(ch, playsBy('vg', 'cg', '2026-03-02', ids('h', 0, 3)))
    const [answer] = await videoStatsMany(client, [q('vg', 'cg', 'l1', 'day', 'g2')], undefined, rows)
    expect(answer![1]).toMatchObject({ views: 3, unique_viewers: 3 })
    expect(calls.stats).toBe(3)
  })
})
