import { afterAll, beforeAll } from 'vitest'
import { startTestClickHouse, startTestRedis, type TestClickHouse, type TestRedis } from './engines.ts'

/**
 * A chDB engine and a Redis server for the tests of one file: started before them
 * (`ready` gets both), stopped after.
 *
 * @example
 * let ch: ClickHouseClient
 * withTestEngines((engine) => (ch = engine.ch))
 */
export function withTestEngines(ready: (engine: TestClickHouse, redis: TestRedis) => void): void {
  let started: [TestClickHouse, TestRedis] | undefined
  beforeAll(async () => {
    started = await Promise.all([startTestClickHouse(), startTestRedis()])
    ready(...started)
  })
  afterAll(async () => {
    await started?.[0].stop()
    await started?.[1].stop()
  })
}
