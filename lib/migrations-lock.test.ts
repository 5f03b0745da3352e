import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rows, startTestRedis, tempDir, testSettings, type TestRedis } from '../test/harness/engines.ts'
import { createClickHouse, type ClickHouseClient } from './clickhouse.ts'
import { createServices } from './create-services.ts'
import { MIGRATIONS_LOCK_KEY, withMigrationsLock } from './migrations-lock.ts'
import { MigrationError } from '../migrations/runner.ts'

let redis: TestRedis
let dataDir: string
let ch: ClickHouseClient

beforeAll(async () => {
  redis = await startTestRedis()
  dataDir = tempDir('cs-ch-migrations-lock-')
  ch = createClickHouse(testSettings(dataDir))
})
afterAll(async () => {
  await ch?.close()
  await redis?.stop()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('the migrations lock', () => {
  it('runs the migrations of processes starting together one at a time', async () => {
    const events: string[] = []
    const run = (name: string) =>
      withMigrationsLock(
        redis.client,
        async () => {
          events.push(`${name} start`)
          await new Promise((r) => setTimeout(r, 150))
          events.push(`${name} end`)
          return name
        },
        { pollMs: 20 },
      )
    expect(await Promise.all([run('a'), run('b')])).toEqual(['a', 'b'])
    expect(events).toEqual(['a start', 'a end', 'b start', 'b end'])
    expect(await redis.client.get(MIGRATIONS_LOCK_KEY)).toBeNull()
  })

  it("waits for a crashed holder's lock to lapse, and gives up after waitMs naming the holder", async () => {
    await redis.client.set(MIGRATIONS_LOCK_KEY, 'a crashed process', 'PX', 300)
    const t0 = Date.now()
    expect(await withMigrationsLock(redis.client, async () => Date.now() - t0, { pollMs: 20 })).toBeGreaterThanOrEqual(250)
    await redis.client.set(MIGRATIONS_LOCK_KEY, 'a long migration', 'PX', 10_000)
    const err = await withMigrationsLock(redis.client, async () => 'ran', { waitMs: 100, pollMs: 20 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MigrationError)
    expect(String(err)).toContain('a long migration')
    await redis.client.del(MIGRATIONS_LOCK_KEY)
  })

  it('lets two server-mode processes start together on a new database, each migration applied once', async () => {
    const settings = { ...testSettings(dataDir, { REDIS_URL: redis.url }), embedded: false }
    const started = await Promise.all([createServices(settings, { ch, redis: redis.client }), createServices(settings, { ch, redis: redis.client })])
    // One applied everything, the other found it applied.
    expect(started.map((s) => s.migrationsApplied.length > 0).sort()).toEqual([false, true])
    const versions = await rows<{ version: number; n: string }>(ch, 'SELECT version, count() AS n FROM schema_migrations GROUP BY version HAVING n > 1')
    expect(versions).toEqual([])
    expect(await rows(ch, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%__rebuild'")).toEqual([])
    for (const s of started) await s.close()
  })
})
