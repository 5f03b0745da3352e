import { rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestRedis, tempDir, type TestRedis } from '../../test/harness/engines.ts'
import { createWal } from '../wal.ts'
import { createLoadWatch, EDGE_LOADS_KEY } from './loads.ts'

let redis: TestRedis
const dirs: string[] = []
const dirFor = (prefix: string) => {
  const d = tempDir(prefix)
  dirs.push(d)
  return d
}
beforeAll(async () => {
  redis = await startTestRedis()
})
afterAll(async () => {
  await redis.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('createLoadWatch', () => {
  const now = 1_800_000_000_000
  const watch = (edgeId: string, oldest?: number) => createLoadWatch(redis.client, { edgeId, oldestUnloaded: () => oldest, maxLagMs: 10_000, staleMs: 30_000 })

  it("publishes the edge's oldest entry not yet loaded, and retires it", async () => {
    await watch('e1', now - 3_000).publish(now)
    expect(await redis.client.hget(EDGE_LOADS_KEY, 'e1')).toBe(`${now}:${now - 3_000}`)
    await watch('e1').publish(now)
    expect(await redis.client.hget(EDGE_LOADS_KEY, 'e1')).toBe(`${now}:0`)
    await watch('e1').retire()
    expect(await redis.client.hexists(EDGE_LOADS_KEY, 'e1')).toBe(0)
  })

  it('says loads are current only when no edge, this one included, is behind or silent', async () => {
    await redis.client.del(EDGE_LOADS_KEY)
    expect(await watch('me').current(now)).toBe(true)
    expect(await watch('me', now - 5_000).current(now)).toBe(true)
    expect(await watch('me', now - 11_000).current(now)).toBe(false)
    await redis.client.hset(EDGE_LOADS_KEY, 'other', `${now - 1_000}:${now - 4_000}`)
    expect(await watch('me').current(now)).toBe(true)
    await redis.client.hset(EDGE_LOADS_KEY, 'other', `${now - 1_000}:${now - 12_000}`)
    expect(await watch('me').current(now)).toBe(false)
    await redis.client.hset(EDGE_LOADS_KEY, 'other', `${now - 31_000}:0`)
    expect(await watch('me').current(now)).toBe(false)
    // Its own published field is not what an edge reads of itself: its log is.
    await redis.client.hset(EDGE_LOADS_KEY, 'other', `${now}:0`)
    await redis.client.hset(EDGE_LOADS_KEY, 'me', `${now - 60_000}:${now - 60_000}`)
    expect(await watch('me').current(now)).toBe(true)
  })

  it('reads and publishes nothing of other edges where ClickHouse is its own (embedded mode)', async () => {
    await redis.client.del(EDGE_LOADS_KEY)
    await redis.client.hset(EDGE_LOADS_KEY, 'other', `${now - 31_000}:${now - 60_000}`)
    const own = (oldest?: number) => createLoadWatch(redis.client, { edgeId: 'me', oldestUnloaded: () => oldest, shared: false })
    expect(await own().current(now)).toBe(true)
    expect(await own(now - 11_000).current(now)).toBe(false)
    await own(now).publish(now)
    expect(await redis.client.hexists(EDGE_LOADS_KEY, 'me')).toBe(0)
  })
})

describe('the write-ahead log, for the load watch', () => {
  it('reports when its oldest entry or load manifest was written, and nothing when empty', async () => {
    const dir = dirFor('cs-wal-oldest-')
    const wal = createWal(dir)
    expect(wal.oldestMs()).toBeUndefined()
    await wal.write('a', [], '')
    await wal.writeLoad('l', ['a'])
    const tenMinutesAgo = new Date(Date.now() - 600_000)
    utimesSync(join(dir, 'l.load'), tenMinutesAgo, tenMinutesAgo)
    writeFileSync(join(dir, 'x.wal.tmp'), 'torn') // not an entry
    expect(Math.round(wal.oldestMs()! / 1000)).toBe(Math.round(tenMinutesAgo.getTime() / 1000))
    await wal.removeLoad('l')
    await wal.remove('a')
    expect(wal.oldestMs()).toBeUndefined()
  })

  it('keeps one edge id across restarts', () => {
    const dir = dirFor('cs-wal-id-')
    const id = createWal(dir).edgeId()
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    expect(createWal(dir).edgeId()).toBe(id)
    expect(createWal(dirFor('cs-wal-id-')).edgeId()).not.toBe(id)
  })
})
