import { describe, expect, it } from 'vitest'
import { BlockRanges, seenBlocks, type TablePart } from '../../lib/table-parts.ts'
import { openRows } from './open-rows.ts'
import { Uint64Set } from './viewer-sets.ts'

// The store of open rows and the blocks a read saw, without an engine (see open-rows.test.ts for reads against chDB).

describe('blocks seen by a read', () => {
  it('are those of the parts that held the key and of earlier parts that overlap none of them', () => {
    const seen = seenBlocks(['all_1_4_1'], ['all_1_2_1', 'all_3_3_0', 'all_5_5_0', 'all_6_6_0', '202612_1_1_0'])
    expect(['all_1_4_1', 'all_1_2_1', 'all_5_5_0', 'all_6_6_0', 'all_5_6_1', '202612_1_1_0'].map((p) => seen.covers(p))).toEqual([true, true, true, true, true, true])
    // Block 7 was not seen; a part that merged it with seen ones is not covered, but overlaps.
    expect([seen.covers('all_7_7_0'), seen.covers('all_1_7_2'), seen.overlaps('all_1_7_2'), seen.overlaps('all_7_7_0')]).toEqual([false, false, true, false])
    // Parts of the list that overlap a part holding the key are not known to lack it beyond it.
    const partly = seenBlocks(['all_3_3_0'], ['all_2_4_1'])
    expect([partly.covers('all_3_3_0'), partly.covers('all_2_2_0'), partly.covers('all_2_4_1')]).toEqual([true, false, false])
    // The blocks of a part not seen, as runs.
    expect([seen.missing('all_1_9_2'), partly.missing('all_1_5_1'), partly.missing('all_3_3_0'), seen.missing('other_1_1_0')]).toEqual([[[7, 9]], [[1, 2], [4, 5]], [], [[1, 1]]])
    expect([seen.present('all_1_9_2'), partly.present('all_1_5_1'), partly.present('all_2_2_0'), seen.present('all_0_1_1')]).toEqual([[[1, 6]], [[3, 3]], [], [[1, 1]]])
    // A name of another shape covers nothing and is known of nothing.
    const r = new BlockRanges()
    r.add('broken')
    expect([r.covers('broken'), r.overlaps('broken')]).toEqual([false, true])
  })
})

describe('the active parts the store keeps', () => {
  it('are read again on a new load version, after a second, and under a new generation; not kept when the read fails', async () => {
    let t = 0
    let reads = 0
    const rows = openRows<number>({ maxKeys: 10, now: () => t })
    const read = async (): Promise<TablePart[]> => [{ name: `all_${++reads}_${reads}_0`, rows: 1 }]
    const names = async (gen: string, loads: string | null) => (await rows.parts(gen, 'video_stats_per_day', loads, read)).map((p) => p.name)
    expect(await names('g1', 'l1')).toEqual(['all_1_1_0'])
    t = 999
    expect(await names('g1', 'l1')).toEqual(['all_1_1_0'])
    expect(await names('g1', 'l2')).toEqual(['all_2_2_0'])
    t = 2000
    expect(await names('g1', 'l2')).toEqual(['all_3_3_0'])
    expect(await names('g2', 'l2')).toEqual(['all_4_4_0'])
    const failing = async (): Promise<TablePart[]> => {
      throw new Error('system.parts not readable')
    }
    expect(await rows.parts('g2', 'video_stats_per_day', 'l3', failing)).toEqual([])
    expect(await names('g2', 'l3')).toEqual(['all_5_5_0'])
  })
})

describe('a kept row advanced by new parts', () => {
  /** A uniqExact(UInt64) state of the given small values. */
  const state = (...values: number[]) => Uint8Array.from([values.length, ...values.flatMap((v) => [v, 0, 0, 0, 0, 0, 0, 0])])
  const add = (row: number, adds: Record<string, number>[], viewers: number) => row + adds.reduce((n, a) => n + a.views!, 0) * 1000 + viewers
  const part = (name: string, rows: number): TablePart => ({ name, rows })

  it('only when its set holds no blocks beyond those the row is exact over once advanced', async () => {
    const rows = openRows<number>({ maxKeys: 10, advance: add })
    const viewers = { viewers: new Uint64Set(), ranges: new BlockRanges() }
    viewers.viewers.add(1, 0)
    viewers.ranges.add('all_1_1_0')
    // A viewer set's entry (not this store's own): it may be read into by others.
    rows.record('g', 't', 'k', 1, seenBlocks(['all_1_1_0'], ['all_1_1_0']), viewers, false)
    const read = async () => new Map([['all_2_2_0', new Map([['k', { sums: { views: 2 }, state: state(1, 2) }]])]])
    // Advanced over block 2: views + 2, viewers {1, 2}.
    expect(await rows.lookup('g', 't', ['k'], [part('all_1_1_0', 1), part('all_2_2_0', 1)], read)).toEqual(new Map([['k', 1 + 2000 + 2]]))
    // A set shared with a newer read already holds block 4, which this list of parts does not know of: not advanced.
    viewers.viewers.add(4, 0)
    viewers.ranges.add('all_4_4_0')
    const read3 = async () => new Map([['all_3_3_0', new Map([['k', { sums: { views: 1 }, state: state(3) }]])]])
    expect(await rows.lookup('g', 't', ['k'], [part('all_1_2_1', 2), part('all_3_3_0', 1)], read3)).toEqual(new Map())
    // Once the list holds it (and the row's parts), it is: block 4 comes with its sums.
    const read4 = async () => new Map([['all_4_4_0', new Map([['k', { sums: { views: 5 }, state: state(4) }]])]])
    const answer = await rows.lookup('g', 't', ['k'], [part('all_1_2_1', 2), part('all_3_3_0', 1), part('all_4_4_0', 1)], read4)
    expect(answer).toEqual(new Map([['k', 2003 + 6000 + 4]]))
    expect(rows.held()).toMatchObject({ advanced: 2, misses: 1, viewers: 0 })
    expect(viewers.viewers.size).toBe(4)
  })
})
