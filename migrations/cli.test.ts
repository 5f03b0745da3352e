import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestRedis, tempDir, type TestRedis } from '../test/harness/engines.ts'
import { BUN, ROOT } from '../test/harness/process.ts'

let redis: TestRedis
let dataDir: string

function bun(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const env = { ...process.env, DATA_DIR: dataDir, REDIS_URL: redis.url, LOG_LEVEL: 'error' }
  const child = spawn(BUN, args, { cwd: ROOT, env })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  return new Promise((r) => child.once('exit', (code) => r({ code, out, err })))
}

/**
 * An embedded data folder as a server left it before migration 0060: the schema of the
 * SQL migrations, and in its write-ahead log a load whose insert never ran (the server
 * was killed first).
 */
const PREPARE = `
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSettings } from './lib/config.ts'
import { createClickHouse } from './lib/clickhouse.ts'
import { migrate } from './migrations/runner.ts'
import { createWal, walDir } from './ingest/wal.ts'
import { encodeRows, rowText } from './ingest/events/rows.ts'
const settings = loadSettings(process.env)
const ch = createClickHouse(settings)
const sqlOnly = mkdtempSync(join(tmpdir(), 'cs-sql-only-'))
for (const f of readdirSync('migrations').filter((f) => /^\\d{4}_.*\\.sql$/.test(f))) cpSync(join('migrations', f), join(sqlOnly, f))
await migrate(ch, { SETTLEMENT_TZ: settings.SETTLEMENT_TZ }, { dir: sqlOnly })
rmSync(sqlOnly, { recursive: true, force: true })
await ch.close()
const claims = { sub: 'w1', vid: 'v-cli', cid: 'c1', sid: 's1', ads: [], dur: 600000, iat: 0, exp: 0 }
const ts = Date.now() - 60000
const ctx = { claims, ip: '10.0.0.1', now: ts }
const entry = crypto.randomUUID()
const body = encodeRows([
  rowText(ctx, { kind: 'event', event: { id: crypto.randomUUID(), type: 'play', ts, position_ms: 0 }, decision: { outcome: 'counted', reason: '', credited: 0 } }),
  rowText(ctx, { kind: 'event', event: { id: crypto.randomUUID(), type: 'progress', ts: ts + 5000, position_ms: 5000, watched_ms: 5000 }, decision: { outcome: 'counted', reason: '', credited: 5000 } }),
], entry)
const wal = createWal(walDir(settings))
await wal.write(entry, [{ videoId: 'v-cli', sessionId: 's1', requestId: 'r1', rows: 2 }], body)
await wal.writeLoad(crypto.randomUUID(), [entry])
`

const READ = `
import { loadSettings } from './lib/config.ts'
import { createClickHouse } from './lib/clickhouse.ts'
import { createWal, walDir } from './ingest/wal.ts'
const settings = loadSettings(process.env)
const ch = createClickHouse(settings)
const one = async (q) => Object.values((await (await ch.query({ query: q, query_params: { v: 'v-cli' }, format: 'JSONEachRow' })).json())[0])[0]
const wal = createWal(walDir(settings))
console.log(JSON.stringify({
  raw: await one('SELECT count() FROM raw_events WHERE video_id = {v:String}'),
  day: await one('SELECT sum(views) FROM video_stats_per_day WHERE video_id = {v:String}'),
  week: await one('SELECT sum(views) FROM video_stats_per_week WHERE video_id = {v:String}'),
  month: await one('SELECT sum(watch_ms) FROM video_stats_per_month WHERE video_id = {v:String}'),
  granules: await one("SELECT engine_full LIKE '%index_granularity_bytes = 65536%' FROM system.tables WHERE database = currentDatabase() AND name = 'video_stats_per_day'"),
  log: wal.tokens().length + wal.loads().length,
}))
await ch.close()
`

beforeAll(async () => {
  redis = await startTestRedis()
  dataDir = tempDir('cs-migrate-cli-')
})
afterAll(async () => {
  await redis?.stop()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('npm run migrate on an embedded data folder', () => {
  it("loads what the write-ahead log holds, then rebuilds the stats tables, counting the load once", async () => {
    const prepared = await bun(['-e', PREPARE])
    expect(prepared.err).toBe('')
    expect(prepared.code).toBe(0)

    const first = await bun(['migrations/cli.ts'])
    expect(first.err).toBe('')
    expect(first.code).toBe(0)
    expect(first.out.trim()).toBe('applied 60 rebuild_video_stats_in_small_granules\napplied 61 project_video_stats_by_metric\napplied 62 partition_video_stats_by_period\napplied 64 compress_video_stats_in_small_blocks\napplied 65 merge_aggregates_in_wider_steps\napplied 66 look_videos_up_in_small_granules')

    const read = await bun(['-e', READ])
    expect(read.code).toBe(0)
    expect(JSON.parse(read.out)).toEqual({ raw: '2', day: '1', week: '1', month: '5000', granules: 1, log: 0 })

    const again = await bun(['migrations/cli.ts'])
    expect(again.code).toBe(0)
    expect(again.out.trim()).toBe('schema is up to date')
  })

  it('refuses an unknown flag', async () => {
    const r = await bun(['migrations/cli.ts', '--bogus'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/bogus[\s\S]*usage: npm run migrate \[-- --ingest-stopped\]/)
  })
})
