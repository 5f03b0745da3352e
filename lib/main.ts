/**
 * The server process (Bun). In embedded mode everything runs here, since one
 * process owns the chDB data folder; in server mode `--role` picks what to run.
 *
 *   bun lib/main.ts                # ingest + analytics + jobs (default)
 *   bun lib/main.ts --role ingest  # only the edge (server mode, many side by side)
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createAnalytics } from '../analytics/app.ts'
import { loadAnalyticsSettings } from '../analytics/settings.ts'
import { createEdge } from '../ingest/app.ts'
import { ingestOpenApi } from '../ingest/openapi.ts'
import { ensureAnalystRole } from '../analytics/clickhouse/analyst-role.ts'
import { scheduleAdAssignment } from '../jobs/ads/schedule.ts'
import { createJobsApp } from '../jobs/http.ts'
import { reconcileLiveViews } from '../jobs/live-views/reconcile.ts'
import { startScheduler } from '../jobs/scheduler.ts'
import { ConfigError, loadSettingsOrExit } from './config.ts'
import { createServices } from './create-services.ts'
import { createRootApp } from './http.ts'
import { watchIngestBuffer } from './metrics.ts'

const ROLES = ['ingest', 'analytics', 'jobs'] as const
type Role = (typeof ROLES)[number]

const { values } = parseArgs({ options: { role: { type: 'string', multiple: true } }, strict: true })
const roles = new Set<Role>()
for (const r of values.role ?? ['all']) {
  for (const part of r.split(',')) {
    if (part === 'all') ROLES.forEach((x) => roles.add(x))
    else if ((ROLES as readonly string[]).includes(part)) roles.add(part as Role)
    else {
      console.error(`--role must be one of all, ${ROLES.join(', ')}; got ${part}`)
      process.exit(2)
    }
  }
}

const settings = loadSettingsOrExit()
let analyticsSettings: ReturnType<typeof loadAnalyticsSettings>
try {
  analyticsSettings = loadAnalyticsSettings() // checked before anything starts, so a bad value stops the process cleanly
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(err.message)
  process.exit(2)
}
if (settings.embedded && roles.size < ROLES.length) {
  console.error('--role needs CLICKHOUSE_URL: in embedded mode one process owns the data folder and runs every role')
  process.exit(2)
}
const services = await createServices(settings)
const edge = roles.has('ingest') ? createEdge(services) : undefined
if (edge) {
  watchIngestBuffer(services.metrics, edge.buffered)
  const repaired = await edge.recover()
  if (repaired > 0) services.log.warn('finished flushes left unconfirmed by the last run', { flushes: repaired })
}
const repairTimer = edge
  ? setInterval(() => edge.repair().catch((err) => services.log.warn('flush repair failed; will retry', { error: String(err) })), settings.WAL_REPAIR_INTERVAL_MS)
  : undefined
// Other edges look old event ids up in raw_events only while every edge's loads are current.
const loadsTimer = edge ? setInterval(() => edge.publishLoads().catch(() => {}), 1000) : undefined
await edge?.publishLoads().catch(() => {})
const internalToken = randomBytes(24).toString('hex')
if (!settings.embedded && roles.has('analytics')) {
  await ensureAnalystRole(services.ch, settings, analyticsSettings).catch((err) =>
    services.log.warn('could not create the read-only analyst role (needs a user allowed to manage access)', { error: String(err) }),
  )
}
const jobs = roles.has('jobs')
  ? {
      app: createJobsApp(services, { internalToken }),
      settlement: startScheduler(services),
      ads: scheduleAdAssignment(services, { midRollMinVideoMs: analyticsSettings.MID_ROLL_MIN_VIDEO_MS }),
      liveViews: setInterval(
        () => void reconcileLiveViews(services).catch((err) => services.log.warn('live view reconciliation failed', { error: String(err) })),
        10 * 60_000,
      ),
    }
  : undefined
const analytics = roles.has('analytics') ? createAnalytics(services, { openapi: roles.has('ingest') ? ingestOpenApi() : undefined }) : undefined
const apps = [edge?.app, analytics?.app, jobs?.app].filter((a) => a !== undefined)
const root = createRootApp(services, { apps, ready: () => edge?.accepting ?? true })

const server = Bun.serve({
  port: settings.PORT,
  hostname: settings.HOST,
  // Above the edge's own 1 MiB limit, so that its 413 (with a reason) is what clients see.
  maxRequestBodySize: 8 * 1024 * 1024,
  // Bun closes a connection idle for 10 s by default, which would cut off an analyst query
  // (up to ANALYST_MAX_EXECUTION_SECONDS) or a slow report before it answers.
  idleTimeout: Math.min(255, analyticsSettings.ANALYST_MAX_EXECUTION_SECONDS + 10),
  // The socket's address read only when asked for: behind a trusted proxy the edge takes
  // X-Forwarded-For, and each read is a getpeername call (2,000 a second in bench:ingest).
  fetch: (req, srv) =>
    edge?.shed(req) ??
    root.fetch(req, {
      get ip() {
        return srv.requestIP(req)?.address
      },
    }),
})

// Lets CLIs hand work to this process instead of opening the data folder themselves.
const runDir = join(settings.dataDir, 'run')
const runFile = join(runDir, 'server.json')
mkdirSync(runDir, { recursive: true })
writeFileSync(runFile, JSON.stringify({ pid: process.pid, port: server.port, internalToken }), { mode: 0o600 })

services.log.info('serving', { url: `http://${settings.HOST}:${server.port}`, roles: [...roles], clickhouse: settings.embedded ? 'embedded' : settings.CLICKHOUSE_URL })
// The launcher (lib/bootstrap.mjs) and the image start Bun with Malloc=1 (SYSTEM_MALLOC, README: Settings).
if (process.env.SYSTEM_MALLOC !== '0' && process.env.Malloc === undefined)
  services.log.info('Bun was started without Malloc=1, so JavaScriptCore allocates through its own allocator: start through npm start (or set Malloc=1) for SYSTEM_MALLOC')
console.log(`listening on http://${settings.HOST === '0.0.0.0' ? 'localhost' : settings.HOST}:${server.port}`)

let stopping = false
const SHUTDOWN_LOAD_TIMEOUT_MS = 20_000
async function shutdown(signal: string) {
  if (stopping) return
  stopping = true
  services.log.info('shutting down', { signal })
  edge?.stopAccepting()
  clearInterval(repairTimer)
  clearInterval(loadsTimer)
  if (jobs) {
    clearInterval(jobs.liveViews)
    jobs.ads.stop()
    jobs.settlement.stop()
    await jobs.settlement.idle()
  }
  try {
    // Whatever cannot be loaded in time (ClickHouse down) stays in the write-ahead log for the next start.
    if (edge && !(await edge.flush(SHUTDOWN_LOAD_TIMEOUT_MS))) services.log.warn('left unloaded flushes in the write-ahead log for the next start')
    await edge?.retireLoads().catch(() => {})
    edge?.close()
    await server.stop()
    await analytics?.close()
    await services.close()
  } finally {
    rmSync(runFile, { force: true })
    process.exit(0)
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))
