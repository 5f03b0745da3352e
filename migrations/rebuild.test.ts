import { cpSync, readdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { encodeRows, insertRawEvents, rowText } from '../ingest/events/rows.ts'
import type { PlaybackEvent } from '../ingest/events/schema.ts'
import { repairWal } from '../ingest/repair.ts'
import { insertingRows, keepInWal } from '../ingest/set-aside.ts'
import { createRules, type Outcome } from '../ingest/state/decide.ts'
import type { PlaybackClaims } from '../ingest/tokens/playback.ts'
import { createWal, walDir } from '../ingest/wal.ts'
import { AGGREGATES_GENERATION_KEY } from '../lib/aggregates-generation.ts'
import { createClickHouse, type ClickHouseClient } from '../lib/clickhouse.ts'
import { createServices } from '../lib/create-services.ts'
import { createLogger } from '../lib/log.ts'
import { rows, startTestRedis, tempDir, testSettings, type TestRedis } from '../test/harness/engines.ts'
import { loadMigrations, migrate, MigrationError } from './runner.ts'
import { anyPartitionCount } from './partitions.ts'
import { rebuildTables } from './rebuild.ts'

const MIGRATIONS_DIR = dirname(fileURLToPath(import.meta.url))
const vars = { SETTLEMENT_TZ: 'Asia/Seoul' }
const STATS = ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month'] as const

let dataDir: string
let ch: ClickHouseClient
let redis: TestRedis
let settings: ReturnType<typeof testSettings>

/** Every row of the three stats tables, merged per key: what analytics and settlement read. */
async function statsTables() {
  const out: Record<string, unknown[]> = {}
  for (const [table, period] of [
    ['video_stats_per_day', 'day'],
    ['video_stats_per_week', 'week'],
    ['video_stats_per_month', 'month'],
  ] as const)
    out[table] = await rows(
      ch,
      `SELECT toString(${period}) AS p, creator_id, video_id, sum(views) AS views, sum(watch_ms) AS watch_ms, sum(ad_impressions) AS ads,
              sum(excluded_self_view) AS self, sum(excluded_duplicate_viewer) AS dup_viewer, sum(excluded_duplicate_ip) AS dup_ip,
              uniqExactMerge(unique_viewers) AS viewers
       FROM ${table} GROUP BY p, creator_id, video_id ORDER BY p, creator_id, video_id`,
    )
  return out
}

const engines = async () =>
  Object.fromEntries(
    (await rows<{ name: string; engine_full: string }>(ch, 'SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN {t:Array(String)}', { t: [...STATS] })).map(
      (r) => [r.name, r.engine_full],
    ),
  )

type Played = { video: string; viewer: string; ts: number; outcome?: Outcome; reason?: string; watched?: number }

/** A flush's text: a play (and a progress event) per item, decided as given. */
function flushText(items: Played[], token: string): { body: string; requests: { videoId: string; sessionId: string; requestId: string; rows: number }[] } {
  const texts: string[] = []
  const requests = []
  for (const it of items) {
    const claims: PlaybackClaims = { sub: it.viewer, vid: it.video, cid: `c-${it.video}`, sid: crypto.randomUUID(), ads: [], dur: 600_000, iat: 0, exp: 0 }
    const play: PlaybackEvent = { id: crypto.randomUUID(), type: 'play', ts: it.ts, position_ms: 0 }
    const progress: PlaybackEvent = { id: crypto.randomUUID(), type: 'progress', ts: it.ts + 10_000, position_ms: 10_000, watched_ms: it.watched ?? 10_000 }
    texts.push(rowText({ claims, ip: '10.0.0.1', now: it.ts }, { kind: 'event', event: play, decision: { outcome: it.outcome ?? 'counted', reason: it.reason ?? '', credited: 0 } }))
    texts.push(rowText({ claims, ip: '10.0.0.1', now: it.ts }, { kind: 'event', event: progress, decision: { outcome: 'counted', reason: '', credited: it.watched ?? 10_000 } }))
    requests.push({ videoId: it.video, sessionId: claims.sid, requestId: `r-${crypto.randomUUID().slice(0, 8)}`, rows: 2 })
  }
  return { body: encodeRows(texts, token), requests }
}

const DAY = 86_400_000
const t0 = Date.parse('2026-10-05T03:00:00Z') // a Monday in Seoul

beforeAll(async () => {
  dataDir = tempDir('cs-ch-rebuild-')
  redis = await startTestRedis()
  settings = testSettings(dataDir, { REDIS_URL: redis.url })
  ch = createClickHouse(settings)
  // The schema as it was before the rebuild: every SQL migration, no code step.
  const before = tempDir('cs-migrations-before-')
  for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{4}_.*\.sql$/.test(f))) cpSync(join(MIGRATIONS_DIR, f), join(before, f))
  await migrate(ch, vars, { dir: before })
  rmSync(before, { recursive: true, force: true })
  // Several loads over days, weeks and months, so each table holds several parts.
  for (let load = 0; load < 4; load++) {
    const items: Played[] = []
    for (let i = 0; i < 30; i++) items.push({ video: `v${i % 7}`, viewer: `w${(i * 13 + load) % 11}`, ts: t0 + ((i * 5 + load * 17) % 45) * DAY, watched: 1_000 + i })
    items.push({ video: 'v1', viewer: 'c-v1', ts: t0, outcome: 'excluded', reason: 'self_view' })
    items.push({ video: 'v2', viewer: 'w1', ts: t0 + DAY, outcome: 'excluded', reason: 'duplicate_viewer' })
    const token = crypto.randomUUID()
    await insertRawEvents(ch, flushText(items, token).body, token)
  }
  // One load over 130 days: the copy of a table partitioned by day writes more partitions at once than the engine allows by default (100).
  const spread: Played[] = Array.from({ length: 130 }, (_, d) => ({ video: `v${d % 5}`, viewer: `w${d % 9}`, ts: t0 + d * DAY }))
  const token = crypto.randomUUID()
  await insertRawEvents(ch, flushText(spread, token).body, token)
})

afterAll(async () => {
  await ch?.close()
  await redis?.stop()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('migrations 0060 and 0062: the stats tables rebuilt in 64 KiB granules, then partitioned by period', () => {
  it('is refused on a database in use unless ingest is stopped, and then nothing is applied', async () => {
    const err = await createServices({ ...settings, embedded: false }, { ch, redis: redis.client }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MigrationError)
    expect((err as Error).message).toMatch(/0060_rebuild_video_stats_in_small_granules .*needs ingest stopped.*--ingest-stopped/)
    expect(await rows(ch, 'SELECT version FROM schema_migrations WHERE version = 60')).toEqual([])
    expect(await redis.client.get(AGGREGATES_GENERATION_KEY)).toBeNull()
    expect(Object.values(await engines()).every((e) => !e.includes('index_granularity_bytes'))).toBe(true)
  })

  it("finishes the edge's write-ahead log first: a load cut between raw_events and the views is counted once in every table", async () => {
    const before = await statsTables()
    // A load whose insert died after raw_events and the day table, before the week and
    // month views (as a kill between them leaves it), left in the log. The two views are
    // dropped for that insert to cut it at that point every time.
    const wal = createWal(walDir(settings))
    const entry = crypto.randomUUID()
    const load = crypto.randomUUID()
    const { body, requests } = flushText([{ video: 'cut-1', viewer: 'w-cut', ts: t0 + 3 * DAY, watched: 7_000 }], entry)
    await wal.write(entry, requests, body)
    await wal.writeLoad(load, [entry])
    const sql = new Map(loadMigrations(vars).flatMap((m) => (m.kind === 'sql' ? [[m.version, m.sql] as const] : [])))
    await ch.command({ query: 'DROP VIEW video_stats_per_week_mv' })
    await ch.command({ query: 'DROP VIEW video_stats_per_month_mv' })
    try {
      await insertRawEvents(ch, body, load)
    } finally {
      await ch.command({ query: sql.get(7)! })
      await ch.command({ query: sql.get(11)! })
    }
    const cut = async (table: string) => (await rows<{ n: string }>(ch, `SELECT count() AS n FROM ${table} WHERE video_id = 'cut-1'`))[0]?.n
    expect([await cut('raw_events'), await cut('video_stats_per_day'), await cut('video_stats_per_week'), await cut('video_stats_per_month')]).toEqual(['2', '1', '0', '0'])

    const generation = Number((await redis.client.get(AGGREGATES_GENERATION_KEY)) ?? 0)
    const services = await createServices(settings, { ch, redis: redis.client, ingestStopped: true })
    expect(services.migrationsApplied.map((m) => m.version)).toEqual([60, 61, 62, 64, 65, 66])
    // What analytics derived from the old tables (cached rows, viewer sets by block) goes.
    expect(Number(await redis.client.get(AGGREGATES_GENERATION_KEY))).toBe(generation + 1)
    expect(wal.tokens()).toEqual([])
    expect(wal.loads()).toEqual([])

    const after = await statsTables()
    for (const table of STATS) {
      const mine = (t: Record<string, unknown[]>) => (t[table] as { video_id: string }[]).filter((r) => r.video_id === 'cut-1')
      expect(mine(after), table).toEqual([expect.objectContaining({ views: '1', watch_ms: '7000', viewers: '1' })])
      // Every other row exactly as before the rebuild.
      expect((after[table] as { video_id: string }[]).filter((r) => r.video_id !== 'cut-1'), table).toEqual(before[table])
    }
    expect(await cut('raw_events')).toBe('2')
  })

  it('leaves the tables in 64 KiB granules, partitioned by period, merged, with their dedup window, comments and no leftovers', async () => {
    for (const [name, engine] of Object.entries(await engines())) {
      expect(engine, name).toContain('index_granularity_bytes = 65536')
      expect(engine, name).toContain('non_replicated_deduplication_window = 10000')
      // 0062: a partition per period, merged into one part by the engine once quiet for an hour.
      expect(engine, name).toContain(`PARTITION BY ${name.replace('video_stats_per_', '')} `)
      expect(engine, name).toContain('min_age_to_force_merge_seconds = 3600, min_age_to_force_merge_on_partition_only = 1')
    }
    const partitions = await rows<{ table: string; n: string; merged: number }>(
      ch,
      `SELECT table, count() AS n, countIf(parts = 1) AS merged
       FROM (SELECT table, partition, count() AS parts FROM system.parts WHERE database = currentDatabase() AND active AND table IN {t:Array(String)} GROUP BY table, partition)
       GROUP BY table ORDER BY table`,
      { t: [...STATS] },
    )
    // One part a period: 130 days and more (the copy wrote them in one insert), their weeks and months.
    expect(partitions.map((p) => [p.table, Number(p.n) === Number(p.merged), Number(p.n) >= 130 ? '130+' : Number(p.n) > 4])).toEqual([
      ['video_stats_per_day', true, '130+'],
      ['video_stats_per_month', true, true],
      ['video_stats_per_week', true, true],
    ])
    expect(await rows(ch, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%rebuild%'")).toEqual([])
    // Merged parts (level 1 and more): FINAL reads them without merging them again.
    expect(await rows(ch, 'SELECT table, name FROM system.parts WHERE database = currentDatabase() AND active AND table IN {t:Array(String)} AND level = 0', { t: [...STATS] })).toEqual([])
    const uncommented = await rows(ch, "SELECT table, name FROM system.columns WHERE database = currentDatabase() AND table IN {t:Array(String)} AND comment = ''", { t: [...STATS] })
    expect(uncommented).toEqual([])
    const comments = await rows<{ comment: string }>(ch, 'SELECT comment FROM system.tables WHERE database = currentDatabase() AND name IN {t:Array(String)}', { t: [...STATS] })
    expect(comments.every((c) => c.comment.length > 0)).toBe(true)
  })

  it('keeps feeding the rebuilt tables through the views, and a repeated block still changes nothing', async () => {
    const token = crypto.randomUUID()
    const { body } = flushText([{ video: 'after-1', viewer: 'w1', ts: t0 + 40 * DAY, watched: 3_000 }], token)
    await insertRawEvents(ch, body, token)
    const once = await statsTables()
    for (const table of STATS)
      expect((once[table] as { video_id: string }[]).filter((r) => r.video_id === 'after-1'), table).toEqual([expect.objectContaining({ views: '1', watch_ms: '3000', viewers: '1' })])
    await insertRawEvents(ch, body, token)
    expect(await statsTables()).toEqual(once)
  })

  it('does not insert again a load older than the rebuild that had reached raw_events, and inserts one that had not', async () => {
    const wal = createWal(walDir(settings))
    const log = createLogger('error')
    const rules = createRules(redis.client, settings)
    const landed = { entry: crypto.randomUUID(), load: crypto.randomUUID() }
    const lost = { entry: crypto.randomUUID(), load: crypto.randomUUID() }
    const a = flushText([{ video: 'stale-landed', viewer: 'w1', ts: t0 + 41 * DAY }], landed.entry)
    const b = flushText([{ video: 'stale-lost', viewer: 'w1', ts: t0 + 41 * DAY }], lost.entry)
    await insertRawEvents(ch, a.body, landed.load) // counted before the crash, as the rebuild copied it
    const beforeRebuild = Date.now() - 3_600_000
    await wal.write(landed.entry, a.requests, a.body)
    await wal.writeLoad(landed.load, [landed.entry], beforeRebuild)
    await wal.write(lost.entry, b.requests, b.body)
    await wal.writeLoad(lost.load, [lost.entry], beforeRebuild)
    // The rebuilt day table no longer knows the landed block's token: inserting it again would count it twice.
    expect(await repairWal({ ch, rules, wal, log, held: { has: () => false }, insertRows: insertingRows(ch, keepInWal(wal, log)) })).toBe(2)
    const day = await rows<{ video_id: string; views: string }>(
      ch,
      "SELECT video_id, sum(views) AS views FROM video_stats_per_day WHERE video_id LIKE 'stale-%' GROUP BY video_id ORDER BY video_id",
    )
    expect(day).toEqual([
      { video_id: 'stale-landed', views: '1' },
      { video_id: 'stale-lost', views: '1' },
    ])
    expect(wal.loads()).toEqual([])
  })
})

describe('migration 0062: a period that takes no more inserts', () => {
  it('is merged by the engine into one part once quiet for the set time, its rows unchanged', async () => {
    // The set time lowered from an hour to a second for the test.
    await ch.command({ query: 'ALTER TABLE video_stats_per_day MODIFY SETTING min_age_to_force_merge_seconds = 1' })
    try {
      const day = t0 + 300 * DAY
      for (let load = 0; load < 3; load++) {
        const token = crypto.randomUUID()
        await insertRawEvents(ch, flushText([{ video: 'quiet-1', viewer: `w${load}`, ts: day, watched: 1_000 }], token).body, token)
      }
      const parts = () => rows<{ name: string; level: number }>(ch, "SELECT name, level FROM system.parts WHERE database = currentDatabase() AND active AND table = 'video_stats_per_day' AND partition = '2027-08-01'")
      await vi.waitFor(async () => expect(await parts()).toHaveLength(1), { timeout: 30_000, interval: 200 })
      const [part] = await parts()
      // A merge of the three loads' parts (block numbers count the table's inserts).
      expect(part!.level).toBeGreaterThan(1)
      const day_ = await rows(ch, "SELECT toString(day) AS day, sum(views) AS views, uniqExactMerge(unique_viewers) AS viewers FROM video_stats_per_day WHERE video_id = 'quiet-1' GROUP BY day")
      expect(day_).toEqual([{ day: '2027-08-01', views: '3', viewers: '3' }])
    } finally {
      await ch.command({ query: 'ALTER TABLE video_stats_per_day MODIFY SETTING min_age_to_force_merge_seconds = 3600' })
    }
  })
})

describe('rebuildTables', () => {
  /** A client whose n-th command fails, as a process killed there would stop. */
  const crashingAt = (n: number): ClickHouseClient => {
    let calls = 0
    return new Proxy(anyPartitionCount(ch), {
      get(target, prop, receiver) {
        if (prop === 'command')
          return async (p: Parameters<ClickHouseClient['command']>[0]) => {
            if (++calls === n) throw new Error(`killed at command ${n}`)
            return target.command(p)
          }
        return Reflect.get(target, prop, receiver) as unknown
      },
    })
  }
  const views = () => {
    const sql = new Map(loadMigrations(vars).flatMap((m) => (m.kind === 'sql' ? [[m.version, m.sql] as const] : [])))
    return [
      { name: 'video_stats_per_day_mv', sql: sql.get(3)! },
      { name: 'video_stats_per_week_mv', sql: sql.get(7)! },
      { name: 'video_stats_per_month_mv', sql: sql.get(11)! },
    ]
  }
  const spec = (bytes: number) => ({
    tables: (
      [
        ['video_stats_per_day', 'day'],
        ['video_stats_per_week', 'week'],
        ['video_stats_per_month', 'month'],
      ] as const
    ).map(([name, period]) => ({
      name,
      // The projections of migration 0061 come along (CREATE TABLE … AS) and need their merge
      // mode; the tables are partitioned by period since 0062, with more than 100 days.
      engine: `AggregatingMergeTree PARTITION BY ${period} ORDER BY (${period}, creator_id, video_id) SETTINGS index_granularity_bytes = ${bytes}, non_replicated_deduplication_window = 10000, deduplicate_merge_projection_mode = 'rebuild'`,
      rebuiltWhen: `index_granularity_bytes = ${bytes}`,
    })),
    views: views(),
  })

  it('finishes the same rebuild, with the same rows, after a crash at any of its steps', async () => {
    // Over three days of two weeks and two months, in several parts each: a rebuild's cost
    // grows with the partitions (130 days: 3 s), the steps a crash may cut do not.
    for (const table of ['raw_events', ...STATS]) await ch.command({ query: `TRUNCATE TABLE ${table}` })
    for (let load = 0; load < 3; load++) {
      const items: Played[] = Array.from({ length: 12 }, (_, i) => ({ video: `v${i % 4}`, viewer: `w${(i + load) % 5}`, ts: t0 + [0, 8, 30][i % 3]! * DAY, watched: 1_000 + i }))
      const token = crypto.randomUUID()
      await insertRawEvents(ch, flushText(items, token).body, token)
    }
    const before = await statsTables()
    expect(before.video_stats_per_day).toHaveLength(12)
    // 3 views dropped, 6 commands a table, 3 views created.
    for (let n = 1; n <= 24; n++) {
      const bytes = 40_000 + n
      await expect(rebuildTables(crashingAt(n), spec(bytes))).rejects.toThrow(`killed at command ${n}`)
      await rebuildTables(anyPartitionCount(ch), spec(bytes))
      expect(Object.values(await engines()).every((e) => e.includes(`index_granularity_bytes = ${bytes},`)), `crash at ${n}`).toBe(true)
      expect(await statsTables(), `crash at ${n}`).toEqual(before)
      // The projections of migration 0061 are copied with the table (with the merge mode they need).
      expect(await rows(ch, 'SELECT table, name FROM system.projections WHERE database = currentDatabase() AND table IN {t:Array(String)} ORDER BY table, name', { t: [...STATS] }), `crash at ${n}`).toEqual(
        STATS.flatMap((table) => ['by_views', 'by_watch_ms'].map((name) => ({ table, name }))).sort((a, b) => a.table.localeCompare(b.table)),
      )
      expect(await rows(ch, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%__rebuild'"), `crash at ${n}`).toEqual([])
    }
    const views = await rows<{ name: string }>(ch, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'video_stats_per_%_mv' ORDER BY name")
    expect(views.map((v) => v.name)).toEqual(['video_stats_per_day_mv', 'video_stats_per_month_mv', 'video_stats_per_week_mv'])
  })
})
