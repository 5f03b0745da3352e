import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { VisibleRuns } from '../../jobs/settlement/queries.ts'
import { bumpSettlementVersion, publishedVisibleRuns, settlementVersion } from '../../jobs/settlement/version.ts'
import { startTestRedis, type TestRedis } from '../../test/harness/engines.ts'
import { createSettlementCache } from './cache.ts'

let redis: TestRedis
beforeAll(async () => {
  redis = await startTestRedis()
})
afterAll(() => redis?.stop())

describe('the settlement cache’s snapshot of the visible runs', () => {
  it('is read once a settlement version, handed to every query of it, read again after a commit, and tried again after a failed read', async () => {
    let reads = 0
    let fail = false
    const snapshot = (n: number): VisibleRuns => ({ runs: new Map([['2026-03-01', n]]), lastFinal: '' })
    const cache = createSettlementCache(redis.client, {
      visibleRuns: async () => {
        reads++
        if (fail) throw new Error('engine down')
        return snapshot(reads)
      },
    })
    const seen: (VisibleRuns | undefined)[] = []
    const ask = (kind: string) => cache.get(kind, { n: 1 }, async (visible) => (seen.push(visible), [kind]))
    // Three queries of one version (two of them together): one read of the runs, given to all three.
    await Promise.all([ask('totals'), ask('videos')])
    await ask('ads')
    expect({ reads, seen }).toEqual({ reads: 1, seen: [snapshot(1), snapshot(1), snapshot(1)] })
    // A commit bumps the version: the next query reads the runs again.
    await bumpSettlementVersion(redis.client)
    await ask('totals')
    expect({ reads, last: seen.at(-1) }).toEqual({ reads: 2, last: snapshot(2) })
    // A failed read: that query evaluates the runs itself (none given), and the next read tries again.
    await bumpSettlementVersion(redis.client)
    fail = true
    await ask('totals')
    expect({ reads, last: seen.at(-1) }).toEqual({ reads: 3, last: undefined })
    fail = false
    await ask('videos')
    expect({ reads, last: seen.at(-1) }).toEqual({ reads: 4, last: snapshot(4) })
  })

  it('is taken from Redis when published with the version or kept there by another process, and read from ClickHouse otherwise', async () => {
    const reads: string[] = []
    const cacheOf = (name: string, n: number) =>
      createSettlementCache(redis.client, {
        visibleRuns: async () => {
          reads.push(name)
          return snapshot(n)
        },
      })
    const snapshot = (n: number): VisibleRuns => ({ runs: new Map([['2026-03-02', n]]), lastFinal: '2026-03-01' })
    const given = async (cache: ReturnType<typeof createSettlementCache>) => {
      let visible: VisibleRuns | undefined
      await cache.get('totals', { n: 2 }, async (v) => ((visible = v), []))
      return visible
    }
    // Published by the run that committed: no process reads ClickHouse.
    await bumpSettlementVersion(redis.client, snapshot(10))
    expect([await given(cacheOf('a', 1)), await given(cacheOf('b', 2)), reads]).toEqual([snapshot(10), snapshot(10), []])
    // A bump without them: the first process reads ClickHouse and keeps them for the others.
    await bumpSettlementVersion(redis.client)
    expect(await given(cacheOf('c', 3))).toEqual(snapshot(3))
    await vi.waitFor(async () => expect(await publishedVisibleRuns(redis.client, (await settlementVersion(redis.client))!)).toEqual(snapshot(3)))
    expect([await given(cacheOf('d', 4)), reads]).toEqual([snapshot(3), ['c']])
  })
})
