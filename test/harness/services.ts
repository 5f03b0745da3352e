import { createServices, type RunningServices } from '../../lib/create-services.ts'
import { startTestClickHouse, startTestRedis, testSettings, type TestClickHouse, type TestRedis } from './engines.ts'

export type TestServices = RunningServices & { testRedis: TestRedis; testCh: TestClickHouse; stopAll(): Promise<void> }

/**
 * Real engines for a test file: a redis-server on a free port, chDB in a temp folder
 * (migrated), keys generated under that folder, and the services built on them.
 *
 * @example
 * let s: TestServices
 * beforeAll(async () => { s = await startTestServices() })
 * afterAll(() => s.stopAll())
 */
export async function startTestServices(overrides: Record<string, string> = {}): Promise<TestServices> {
  const testRedis = await startTestRedis()
  const testCh = await startTestClickHouse({ SETTLEMENT_TZ: overrides.SETTLEMENT_TZ ?? 'Asia/Seoul', RAW_EVENTS_TTL_DAYS: 400 })
  const settings = testSettings(testCh.dataDir, { REDIS_URL: testRedis.url, ...overrides })
  const services = await createServices(settings, { ch: testCh.ch, redis: testRedis.client, migrate: false })
  return {
    ...services,
    testRedis,
    testCh,
    async stopAll() {
      await services.close()
      await testCh.stop()
      await testRedis.stop()
    },
  }
}
