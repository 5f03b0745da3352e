import { loadSettingsOrExit } from '../lib/config.ts'
import { createClickHouse } from '../lib/clickhouse.ts'
import { applyRuntimeSchemaSettings, migrate } from './runner.ts'

const settings = loadSettingsOrExit()
const ch = createClickHouse(settings)
try {
  const applied = await migrate(ch, { SETTLEMENT_TZ: settings.SETTLEMENT_TZ })
  await applyRuntimeSchemaSettings(ch, settings)
  console.log(applied.length === 0 ? 'schema is up to date' : applied.map((m) => `applied ${m.version} ${m.name}`).join('\n'))
} catch (err) {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
} finally {
  await ch.close()
}
