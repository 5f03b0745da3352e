/**
 * `npm run migrate [-- --ingest-stopped]`: applies pending migrations. A migration that
 * rewrites tables ingest writes into runs only with ingest stopped: in embedded mode
 * that holds here (a running server would own the data folder); in server mode the
 * operator stops every edge and says so with --ingest-stopped. Either way what this
 * host's write-ahead log still holds is loaded first, and once such a migration has run
 * the aggregates generation is bumped (Redis is opened only for those).
 */
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { finishWal } from '../ingest/repair.ts'
import { createWal, walDir } from '../ingest/wal.ts'
import { bumpAggregatesGeneration } from '../lib/aggregates-generation.ts'
import { createClickHouse } from '../lib/clickhouse.ts'
import { loadSettingsOrExit } from '../lib/config.ts'
import { createLogger } from '../lib/log.ts'
import { withMigrationsLock } from '../lib/migrations-lock.ts'
import { createRedis, waitForRedis } from '../lib/redis.ts'
import { startPrivateRedis } from '../lib/redis-server.ts'
import { applyRuntimeSchemaSettings, migrate } from './runner.ts'

let values: { 'ingest-stopped': boolean }
try {
  ;({ values } = parseArgs({ options: { 'ingest-stopped': { type: 'boolean', default: false } }, strict: true }))
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\nusage: npm run migrate [-- --ingest-stopped]`)
  process.exit(2)
}
const settings = loadSettingsOrExit()
const log = createLogger(settings.LOG_LEVEL)
const ch = createClickHouse(settings)
const closing: (() => Promise<void> | void)[] = [() => ch.close()]

let redis: ReturnType<typeof createRedis> | undefined
async function openRedis(): Promise<ReturnType<typeof createRedis>> {
  if (redis) return redis
  const local = settings.REDIS_URL ? undefined : await startPrivateRedis({ dir: join(settings.dataDir, 'redis') })
  const client = createRedis(local ? local.target : { url: settings.REDIS_URL! })
  closing.push(() => local?.stop(), () => client.disconnect())
  await waitForRedis(client)
  return (redis = client)
}

async function drainIngest(): Promise<void> {
  const wal = createWal(walDir(settings))
  if (wal.tokens().length === 0 && wal.loads().length === 0) return
  await finishWal({ settings, ch, redis: await openRedis(), log })
}

try {
  const apply = () => migrate(ch, { SETTLEMENT_TZ: settings.SETTLEMENT_TZ }, { ...(settings.embedded || values['ingest-stopped'] ? { drainIngest } : {}), tablesRewritten: async () => bumpAggregatesGeneration(await openRedis()) })
  // Against a server, not at once with a process starting (see lib/migrations-lock.ts).
  const applied = settings.embedded ? await apply() : await withMigrationsLock(await openRedis(), apply)
  await applyRuntimeSchemaSettings(ch, settings)
  console.log(applied.length === 0 ? 'schema is up to date' : applied.map((m) => `applied ${m.version} ${m.name}`).join('\n'))
} catch (err) {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
} finally {
  for (const close of closing.reverse()) await close()
}
