/**
 * Runs the daily ad-assignment job once: retires ads whose contract ended and
 * assigns newly active ones.
 *
 *   bun jobs/ads-cli.ts [--date YYYY-MM-DD]   # default: today in SETTLEMENT_TZ
 *
 * In embedded mode the server process owns the data folder; while it runs, use
 * `POST /v1/admin/jobs/ad-assignment/runs` instead.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { today } from '../analytics/http/dates.ts'
import { loadAnalyticsSettings } from '../analytics/settings.ts'
import { loadSettingsOrExit } from '../lib/config.ts'
import { createServices } from '../lib/create-services.ts'
import { runAdAssignment } from './ads/assign.ts'

const { values } = parseArgs({ options: { date: { type: 'string' } }, strict: true })
if (values.date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(values.date)) {
  console.error('--date must be YYYY-MM-DD')
  process.exit(2)
}
const settings = loadSettingsOrExit()
const analytics = loadAnalyticsSettings()
if (settings.embedded && existsSync(join(settings.dataDir, 'run', 'server.json'))) {
  console.error('the server is running and owns the embedded ClickHouse data; run the job through POST /v1/admin/jobs/ad-assignment/runs')
  process.exit(1)
}
const services = await createServices(settings)
try {
  const result = await runAdAssignment(services, { date: values.date ?? today(settings.SETTLEMENT_TZ), midRollMinVideoMs: analytics.MID_ROLL_MIN_VIDEO_MS })
  console.log(JSON.stringify(result))
  if (result.status === 'skipped') process.exitCode = 3
} finally {
  await services.close()
}
