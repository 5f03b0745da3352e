import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSettings, type Settings } from '../../lib/config.ts'
import { createClickHouse, type ClickHouseClient } from '../../lib/clickhouse.ts'
import { createRedis, waitForRedis, type Redis } from '../../lib/redis.ts'
import { startPrivateRedis, type PrivateRedis } from '../../lib/redis-server.ts'
import { applyRuntimeSchemaSettings, migrate } from '../../migrations/runner.ts'

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export function tempDir(prefix = 'cs-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export type TestRedis = { url: string; port: number; client: Redis; server: PrivateRedis; stop(): Promise<void> }

/** Starts a real redis-server on a free port (no persistence) and a client for it. */
export async function startTestRedis(): Promise<TestRedis> {
  const dir = tempDir('cs-redis-')
  const port = await freePort()
  const server = await startPrivateRedis({ dir, port, persist: false })
  const url = `redis://127.0.0.1:${port}`
  const client = createRedis({ url })
  // Tests stop and restart this server on purpose; the failures show up as command errors.
  client.on('error', () => {})
  await waitForRedis(client)
  const redis: TestRedis = {
    url,
    port,
    client,
    server,
    async stop() {
      client.disconnect()
      // `server` may have been replaced by a test that restarted Redis.
      await redis.server.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return redis
}

export type TestClickHouse = { ch: ClickHouseClient; dataDir: string; stop(): Promise<void> }

/** Opens chDB in a fresh temporary folder and applies every migration. One per test file (process). */
export async function startTestClickHouse(settings: Pick<Settings, 'SETTLEMENT_TZ' | 'RAW_EVENTS_TTL_DAYS'> = { SETTLEMENT_TZ: 'Asia/Seoul', RAW_EVENTS_TTL_DAYS: 400 }): Promise<TestClickHouse> {
  const dataDir = tempDir('cs-ch-')
  const ch = createClickHouse({ ...loadSettings({ DATA_DIR: dataDir }), dataDir })
  await migrate(ch, { SETTLEMENT_TZ: settings.SETTLEMENT_TZ })
  await applyRuntimeSchemaSettings(ch, settings)
  return {
    ch,
    dataDir,
    async stop() {
      await ch.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** Settings for a test: the defaults, a temp data folder, and the given overrides. */
export function testSettings(dataDir: string, overrides: Record<string, string> = {}): Settings {
  return loadSettings({ NODE_ENV: 'test', DATA_DIR: dataDir, ...overrides })
}

/** Runs a SELECT with bound parameters and returns its rows. */
export async function rows<T = Record<string, unknown>>(ch: ClickHouseClient, query: string, query_params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await ch.query({ query, query_params, format: 'JSONEachRow' })
  return (await rs.json()) as T[]
}
