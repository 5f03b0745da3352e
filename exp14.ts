import { createClickHouse } from './lib/clickhouse.ts'
import { loadSettings } from './lib/config.ts'
import { createServices } from './lib/create-services.ts'
import { settle } from './jobs/settlement/job.ts'
import { startTestRedis } from './test/harness/engines.ts'
const dir = process.argv[2]!
const redis = await startTestRedis()
const settings = loadSettings({ DATA_DIR: dir, REDIS_URL: redis.url, LOG_LEVEL: 'warn' })
const ch = createClickHouse(settings)
const services = await createServices(settings, { ch, redis: redis.client, migrate: false })
const day = '2026-12-02'
const later = () => new Date(new Date(`${day}T00:00:00+09:00`).getTime() + 27 * 3_600_000)
const t = performance.now()
await settle(services, { kind: 'days', from: day, to: day, finalize: false }, { now: later })
console.log(dir, 'settle', ((performance.now() - t) / 1000).toFixed(2), 's')
await services.close()
await redis.stop()
