import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestRedis, type TestRedis } from '../../test/harness/engines.ts'
import { acquireSettlementLock } from './lock.ts'
import type { VisibleRuns } from './queries.ts'
import { bumpSettlementVersion, decodeVisibleRuns, encodeVisibleRuns, publishedVisibleRuns, rememberVisibleRuns, SETTLEMENT_VISIBLE_KEY, settlementVersion } from './version.ts'

let redis: TestRedis
beforeAll(async () => {
  redis = await startTestRedis()
})
afterAll(() => redis?.stop())

const runs = (...pairs: [string, number][]): VisibleRuns => ({ runs: new Map(pairs), lastFinal: pairs[0]?.[0] ?? '' })
const version = async () => (await settlementVersion(redis.client))!

describe('the settlement version and the visible runs published with it', () => {
  it('publishes the runs with the bump for the new version only; a bump without runs leaves none', async () => {
    const before = await version()
    const visible = runs(['2024-03-01', 7], ['2024-03-02', 9])
    await bumpSettlementVersion(redis.client, visible)
    const after = await version()
    expect(Number(after)).toBe(Number(before) + 1)
    expect(await publishedVisibleRuns(redis.client, after)).toEqual(visible)
    expect(await publishedVisibleRuns(redis.client, before)).toBeUndefined()
    await bumpSettlementVersion(redis.client)
    expect(await publishedVisibleRuns(redis.client, await version())).toBeUndefined()
    expect(await redis.client.exists(SETTLEMENT_VISIBLE_KEY)).toBe(0)
  })

  it('publishes only while the lock the commit was made under is held, and bumps either way', async () => {
    const lock = await acquireSettlementLock(redis.client, { ttlMs: 10_000, key: 'test:publish-lock' })
    await bumpSettlementVersion(redis.client, runs(['2024-03-03', 11]), lock.fence)
    expect(await publishedVisibleRuns(redis.client, await version())).toEqual(runs(['2024-03-03', 11]))
    // Another runner's lock now: the runs this one read may predate that runner's commits.
    await redis.client.set(lock.fence.key, 'another runner')
    const before = await version()
    await bumpSettlementVersion(redis.client, runs(['2024-03-03', 11]), lock.fence)
    expect(Number(await version())).toBe(Number(before) + 1)
    expect(await publishedVisibleRuns(redis.client, await version())).toBeUndefined()
    await lock.release()
  })

  it('keeps a reader’s runs for its version unless runs of that version or a later one are kept', async () => {
    await bumpSettlementVersion(redis.client)
    const v = await version()
    await rememberVisibleRuns(redis.client, v, runs(['2024-03-04', 1]))
    expect(await publishedVisibleRuns(redis.client, v)).toEqual(runs(['2024-03-04', 1]))
    // A second reader of the same version, or a slow one of the version before, changes nothing.
    await rememberVisibleRuns(redis.client, v, runs(['2024-03-04', 2]))
    await rememberVisibleRuns(redis.client, String(Number(v) - 1), runs(['2024-03-04', 3]))
    expect(await publishedVisibleRuns(redis.client, v)).toEqual(runs(['2024-03-04', 1]))
    // A reader of a later version replaces them.
    await bumpSettlementVersion(redis.client)
    await rememberVisibleRuns(redis.client, await version(), runs(['2024-03-04', 4]))
    expect(await publishedVisibleRuns(redis.client, await version())).toEqual(runs(['2024-03-04', 4]))
    expect(await redis.client.ttl(SETTLEMENT_VISIBLE_KEY)).toBeGreaterThan(0)
  })

  it('reads back what it wrote, and nothing from text that is not a snapshot', () => {
    const visible = runs(['2024-03-01', 7], ['2024-02-29', 12])
    expect(decodeVisibleRuns(encodeVisibleRuns(visible))).toEqual(visible)
    for (const text of ['', 'not json', '{"runs":[["2024-3-1",1]],"lastFinal":""}', '{"runs":[["2024-03-01",-1]],"lastFinal":""}', '{"runs":[]}']) expect(decodeVisibleRuns(text)).toBeUndefined()
  })
})
