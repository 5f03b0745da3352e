import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { VisibleRuns } from '../../jobs/settlement/queries.ts'
import { bumpSettlementVersion } from '../../jobs/settlement/version.ts'
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
})
