import { join } from 'node:path'
import { applyRuntimeSchemaSettings, migrate, type Migration } from '../migrations/runner.ts'
import { bumpAggregatesGeneration } from './aggregates-generation.ts'
import { finishWal } from '../ingest/repair.ts'
import { loadPlaybackKeys } from '../ingest/tokens/keys.ts'
import { createPlaybackVerifier } from '../ingest/tokens/playback.ts'
import { createClickHouse, engineTurnsOf, watchEmbeddedStatements, type ClickHouseClient } from './clickhouse.ts'
import type { Settings } from './config.ts'
import { createLogger } from './log.ts'
import { createMetrics, embeddedStatementHistogram, gaugeRead, trackEmbeddedEngineMemory, watchEventLoop } from './metrics.ts'
import { withMigrationsLock } from './migrations-lock.ts'
import { createRedis, waitForRedis, type Redis } from './redis.ts'
import { startPrivateRedis, type PrivateRedis } from './redis-server.ts'
import type { Services } from './services.ts'

export type RunningServices = Services & { close(): Promise<void>; /** What this start applied (none when `migrate: false`). */ migrationsApplied: Migration[] }

/**
 * Opens everything a process needs: the private redis-server when REDIS_URL is unset,
 * ClickHouse (embedded or server) with migrations applied, the playback keys.
 *
 * @example
 * const services = await createServices(loadSettingsOrExit())
 */
export async function createServices(
  settings: Settings,
  opts: {
    migrate?: boolean
    ch?: ClickHouseClient
    redis?: Redis
    /**
     * No ingest edge writes into ClickHouse now but, perhaps, this process's own, not
     * started yet: migrations that rewrite tables ingest writes into may run, once this
     * process's write-ahead log is finished. Default: embedded mode, where this process
     * is the only one that can open the data folder.
     */
    ingestStopped?: boolean
  } = {},
): Promise<RunningServices> {
  const log = createLogger(settings.LOG_LEVEL)
  let privateRedis: PrivateRedis | undefined
  let redis = opts.redis
  if (!redis) {
    let target: { url: string } | { path: string }
    if (settings.REDIS_URL) target = { url: settings.REDIS_URL }
    else {
      privateRedis = await startPrivateRedis({ dir: join(settings.dataDir, 'redis') })
      target = privateRedis.target
    }
    redis = createRedis(target)
    redis.on('error', (err: Error) => log.warn('redis error', { error: err.message }))
    await waitForRedis(redis)
  }
  const ch = opts.ch ?? createClickHouse(settings)
  let applied: Migration[] = []
  if (opts.migrate ?? true) {
    const ingestStopped = opts.ingestStopped ?? settings.embedded
    const apply = () =>
      migrate(ch, { SETTLEMENT_TZ: settings.SETTLEMENT_TZ }, {
        drainIngest: ingestStopped ? () => finishWal({ settings, ch, redis, log }) : undefined,
        tablesRewritten: () => bumpAggregatesGeneration(redis),
      })
    // Against a server, other processes may be starting too: one at a time (see migrations-lock.ts).
    applied = settings.embedded ? await apply() : await withMigrationsLock(redis, apply)
    await applyRuntimeSchemaSettings(ch, settings)
    if (applied.length > 0) log.info('migrations applied', { versions: applied.map((m) => m.version) })
  }
  const playbackKeys = await loadPlaybackKeys(settings)
  const verifyPlaybackToken = createPlaybackVerifier(playbackKeys, {
    issuer: settings.PLAYBACK_TOKEN_ISSUER,
    clockToleranceSeconds: settings.CLOCK_TOLERANCE_SECONDS,
  })
  const ownsRedis = !opts.redis
  const ownsCh = !opts.ch
  const metrics = createMetrics()
  const stopWatchingLoop = watchEventLoop(metrics)
  gaugeRead(metrics, 'cs_ingest_playback_tokens_kept', 'Playback tokens kept verified in memory (until they expire, their session ends or the cap)', verifyPlaybackToken.kept)
  const turns = engineTurnsOf(ch)
  if (turns) {
    // Counters read at each scrape (see engine-turns.ts: a load waits for the reads under way).
    gaugeRead(metrics, 'cs_clickhouse_embedded_loads_held', 'Background statements (loads of events, settlement line statements) that waited for the reads under way in the embedded engine, since start', () => turns.held.loads)
    gaugeRead(metrics, 'cs_clickhouse_embedded_loads_held_seconds', 'Time those loads waited in all, since start', () => turns.held.ms / 1000)
    // chDB keeps no query log: its slow statements are named in this one.
    const statementSeconds = embeddedStatementHistogram(metrics)
    watchEmbeddedStatements(ch, (t) => {
      statementSeconds.observe({ kind: t.kind }, t.ms / 1000)
      if (t.ms >= settings.SLOW_STATEMENT_MS)
        log.warn('slow ClickHouse statement', { kind: t.kind, ms: Math.round(t.ms), waited_ms: Math.round(t.waitedMs), query_id: t.queryId, statement: t.statement.replace(/\s+/g, ' ').slice(0, 500) })
    })
  }
  if (settings.CLICKHOUSE_URL === undefined)
    trackEmbeddedEngineMemory(metrics, {
      async tracked() {
        const rs = await ch.query({ query: "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'", format: 'JSONEachRow' })
        const [row] = await rs.json<{ value: string | number }>()
        return Number(row?.value ?? 0)
      },
      async resident() {
        // jemalloc's own statistics, as malloc_stats_print writes them (~75 KB, ~4 ms).
        const rs = await ch.query({ query: 'SELECT stats FROM system.jemalloc_stats', format: 'JSONEachRow' })
        const [row] = await rs.json<{ stats: string }>()
        const resident = /^Allocated: .*?\bresident: (\d+)/m.exec(row?.stats ?? '')?.[1]
        if (resident === undefined) throw new Error("jemalloc's statistics give no resident figure")
        return Number(resident)
      },
    })
  return {
    settings,
    ch,
    redis,
    log,
    metrics,
    playbackKeys,
    verifyPlaybackToken,
    migrationsApplied: applied,
    async close() {
      stopWatchingLoop()
      if (ownsCh) await ch.close()
      if (ownsRedis) redis.disconnect()
      // The private redis-server keeps running only as long as this process does.
      await privateRedis?.stop()
    },
  }
}

