import { createHash } from 'node:crypto'
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickHouse, type ClickHouseClient } from '../lib/clickhouse.ts'
import { loadSettings } from '../lib/config.ts'
import { rows, tempDir } from '../test/harness/engines.ts'
import { applyRuntimeSchemaSettings, EARLIER_CHECKSUMS, loadMigrations, migrate, MigrationError, type Migration } from './runner.ts'

const MIGRATIONS_DIR = dirname(fileURLToPath(import.meta.url))
const vars = { SETTLEMENT_TZ: 'Asia/Seoul' }

let dataDir: string
let ch: ClickHouseClient
let firstRun: Migration[]
const dirs: string[] = []

/** The real migration files, in order (SQL statements and code steps). */
const migrationFiles = () =>
  readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.(sql|ts)$/.test(f))
    .sort()

/** A temporary migrations folder holding the given files. */
function migrationsDir(files: Record<string, string> = {}, copyReal = false): string {
  const dir = tempDir('cs-migrations-')
  dirs.push(dir)
  // The code steps' helpers too (rebuild.ts, partitions.ts, ...): every module of the folder but its tests.
  const helpers = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !migrationFiles().includes(f))
  if (copyReal) for (const f of [...migrationFiles(), ...helpers]) cpSync(join(MIGRATIONS_DIR, f), join(dir, f))
  for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql)
  return dir
}

async function migrationError(run: Promise<unknown>): Promise<MigrationError> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(MigrationError)
  return err as MigrationError
}

const sqlOf = (m: Migration | undefined) => (m?.kind === 'sql' ? m.sql : undefined)

const recorded = () => rows<{ version: number; name: string; checksum: string; applied_at: string }>(ch, 'SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version')

beforeAll(async () => {
  dataDir = tempDir('cs-ch-migrations-')
  ch = createClickHouse(loadSettings({ DATA_DIR: dataDir }))
  firstRun = await migrate(ch, vars)
})

afterAll(async () => {
  await ch?.close()
  for (const d of [dataDir, ...dirs]) if (d) rmSync(d, { recursive: true, force: true })
})

describe('migrate', () => {
  it('applies every migration file in order and records each with the sha256 of its SQL', async () => {
    expect(firstRun.map((m) => `${String(m.version).padStart(4, '0')}_${m.name}.${m.kind === 'sql' ? 'sql' : 'ts'}`)).toEqual(migrationFiles())
    const versions = firstRun.map((m) => m.version)
    expect(versions).toEqual([...versions].sort((a, b) => a - b))

    const stored = await recorded()
    expect(stored.map(({ version, name, checksum }) => ({ version: Number(version), name, checksum }))).toEqual(
      firstRun.map((m) => ({
        version: m.version,
        name: m.name,
        checksum: m.kind === 'sql' ? createHash('sha256').update(m.sql).digest('hex') : expect.stringMatching(/^[0-9a-f]{64}$/),
      })),
    )
    // Recorded one after the other, in file order.
    const times = stored.map((r) => r.applied_at)
    expect(times).toEqual([...times].sort())
  })

  it('applies nothing and records nothing when run a second time', async () => {
    const before = await recorded()
    expect(await migrate(ch, vars)).toEqual([])
    expect(await recorded()).toEqual(before)
  })

  it('applies only a new migration added after the others', async () => {
    const dir = migrationsDir({ '9990_create_runner_probe.sql': "CREATE TABLE IF NOT EXISTS runner_probe (x UInt8 COMMENT 'probe') ENGINE = Memory COMMENT 'test table of runner.test.ts'" }, true)
    const applied = await migrate(ch, vars, { dir })
    expect(applied.map((m) => m.name)).toEqual(['create_runner_probe'])
    expect(await migrate(ch, vars, { dir })).toEqual([])
  })

  it('refuses to run when an applied file was edited, and applies nothing then', async () => {
    const dir = migrationsDir({ '9991_create_never_applied.sql': "CREATE TABLE never_applied (x UInt8 COMMENT 'x') ENGINE = Memory COMMENT 'x'" }, true)
    const file = join(dir, '0002_create_video_stats_per_day.sql')
    writeFileSync(file, readFileSync(file, 'utf8').replace("COMMENT 'Video id'", "COMMENT 'The video id'"))
    const err = await migrationError(migrate(ch, vars, { dir }))
    expect(err.message).toMatch(/0002_create_video_stats_per_day was changed after it was applied/)
    expect(await rows(ch, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name = 'never_applied'")).toEqual([])
  })

  it('refuses to run when a module an applied code migration imports was edited', async () => {
    const dir = migrationsDir({}, true)
    const helper = join(dir, 'rebuild.ts')
    writeFileSync(helper, `${readFileSync(helper, 'utf8')}\n// edited\n`)
    const err = await migrationError(migrate(ch, vars, { dir }))
    expect(err.message).toMatch(/0060_rebuild_video_stats_in_small_granules was changed after it was applied/)
  })

  it('starts a database that applied 0060 and 0062 before the fix of rebuild.ts, and still refuses any other checksum', async () => {
    const recordChecksum = (version: number, checksum: string) =>
      ch.command({ query: 'ALTER TABLE schema_migrations UPDATE checksum = {c:String} WHERE version = {v:UInt32}', query_params: { c: checksum, v: version }, clickhouse_settings: { mutations_sync: '2' } })
    const now = new Map(loadMigrations(vars).map((m) => [m.version, m.checksum]))
    try {
      for (const v of [60, 62]) await recordChecksum(v, EARLIER_CHECKSUMS.get(v)![0]!)
      expect(await migrate(ch, vars)).toEqual([])
      await recordChecksum(62, 'f'.repeat(64))
      const err = await migrationError(migrate(ch, vars))
      expect(err.message).toMatch(/0062_partition_video_stats_by_period was changed after it was applied/)
    } finally {
      for (const v of [60, 62]) await recordChecksum(v, now.get(v)!)
    }
    expect(await migrate(ch, vars)).toEqual([])
  })

  it('refuses to run when SETTLEMENT_TZ differs from the one the migrations were applied with', async () => {
    const first = readdirSync(MIGRATIONS_DIR)
      .filter((f) => f.endsWith('.sql'))
      .sort()
      .find((f) => readFileSync(join(MIGRATIONS_DIR, f), 'utf8').includes('{{SETTLEMENT_TZ}}'))
    expect(first).toBeDefined()
    const err = await migrationError(migrate(ch, { SETTLEMENT_TZ: 'UTC' }))
    expect(err.message).toContain(first!.replace(/\.sql$/, ''))
    expect(err.message).toMatch(/SETTLEMENT_TZ/)
  })

  it('refuses a file that holds two statements', async () => {
    const dir = migrationsDir({ '0001_two.sql': "CREATE TABLE a (x UInt8) ENGINE = Memory;\nCREATE TABLE b (x UInt8) ENGINE = Memory;\n" })
    const err = await migrationError(migrate(ch, vars, { dir }))
    expect(err.message).toMatch(/0001_two\.sql holds more than one statement/)
  })

  it.each(['1_short_number.sql', '0001-dash.sql', '0001_UpperCase.sql', '0001_.sql', 'create_things.sql'])('refuses a file named %s', async (name) => {
    const dir = migrationsDir({ [name]: 'SELECT 1' })
    const err = await migrationError(migrate(ch, vars, { dir }))
    expect(err.message).toContain(`migration file ${name} is not named NNNN_name.sql`)
  })

  it('refuses a code migration that does not export what the runner runs', async () => {
    const dir = migrationsDir({ '9993_create_nothing.ts': 'export default { up: async () => {} }\n' })
    const err = await migrationError(migrate(ch, vars, { dir }))
    expect(err.message).toMatch(/9993_create_nothing\.ts must export default \{ requiresIdleIngest, up\(ch, ctx\) \}/)
  })

  it('refuses two files with the same number', async () => {
    const dir = migrationsDir({ '0001_a.sql': 'SELECT 1', '0001_b.sql': 'SELECT 2' })
    expect((await migrationError(migrate(ch, vars, { dir }))).message).toMatch(/two migrations are numbered 0001/)
  })
})

describe('loadMigrations', () => {
  it('accepts a trailing semicolon, and semicolons inside string literals or comments', () => {
    const dir = migrationsDir({
      '0001_ok.sql': "-- a comment; with a semicolon\nSELECT 'a;b', 'it''s; fine' AS x;\n",
    })
    const [m] = loadMigrations(vars, dir)
    expect(sqlOf(m)).toBe("SELECT 'a;b', 'it''s; fine' AS x")
  })

  it('renders {{SETTLEMENT_TZ}} as a quoted literal and refuses an unsafe value', () => {
    const dir = migrationsDir({ '0001_tz.sql': 'SELECT toDate(now(), {{SETTLEMENT_TZ}})' })
    expect(sqlOf(loadMigrations({ SETTLEMENT_TZ: 'America/Argentina/Buenos_Aires' }, dir)[0])).toBe("SELECT toDate(now(), 'America/Argentina/Buenos_Aires')")
    expect(() => loadMigrations({ SETTLEMENT_TZ: "UTC') --" }, dir)).toThrow(MigrationError)
  })

  // The comment stripper (`/--.*$/gm` in loadMigrations) does not know about string
  // literals: `--` inside a COMMENT '...' cuts the statement there, so the SQL sent to
  // ClickHouse is not the SQL in the file.
  it('keeps -- inside a string literal', () => {
    const dir = migrationsDir({ '0001_dashes.sql': "SELECT 'before -- after' AS x\n" })
    expect(sqlOf(loadMigrations(vars, dir)[0])).toBe("SELECT 'before -- after' AS x")
  })
})

describe('applyRuntimeSchemaSettings', () => {
  const ttl = async () => {
    const [t] = await rows<{ create_table_query: string }>(ch, "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'raw_events'")
    return /TTL (.*?)(?: SETTINGS| COMMENT|$)/.exec(t!.create_table_query)?.[1]
  }
  // The bound parameter shows up as _CAST(n, 'UInt32') in the stored definition.
  const days = (n: number) => new RegExp(`^toDateTime\\(received_at\\) \\+ toIntervalDay\\((?:_CAST\\(${n}, 'UInt32'\\)|${n})\\)$`)

  it('sets the raw_events TTL to RAW_EVENTS_TTL_DAYS, and changes it on the next run', async () => {
    await applyRuntimeSchemaSettings(ch, { RAW_EVENTS_TTL_DAYS: 30 })
    expect(await ttl()).toMatch(days(30))
    await applyRuntimeSchemaSettings(ch, { RAW_EVENTS_TTL_DAYS: 400 })
    expect(await ttl()).toMatch(days(400))
  })
})

describe('the schema the migrations create', () => {
  // Materialized views are excluded: nobody reads them (a SELECT from one reads its TO
  // table), so what analysts see is the target's comments, checked below.
  it('has a comment on every table and view', async () => {
    const uncommented = await rows(ch, "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine != 'MaterializedView' AND comment = '' ORDER BY name")
    expect(uncommented).toEqual([])
  })

  it('has a comment on every column of every table and view', async () => {
    const uncommented = await rows<{ table: string; name: string }>(
      ch,
      `SELECT c.table AS table, c.name AS name FROM system.columns AS c
       WHERE c.database = currentDatabase() AND c.comment = ''
         AND c.table IN (SELECT name FROM system.tables WHERE database = currentDatabase() AND engine != 'MaterializedView')
       ORDER BY table, name`,
    )
    expect(uncommented.map((c) => `${c.table}.${c.name}`)).toEqual([])
  })

  it('merges raw_events and the aggregate tables in steps of 20 parts (merge_selector_base), every other table in the engine default steps', async () => {
    const engines = await rows<{ name: string; engine_full: string }>(ch, "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' ORDER BY name")
    const set = engines.filter((t) => t.engine_full.includes('merge_selector_base')).map((t) => [t.name, /merge_selector_base = (\d+)/.exec(t.engine_full)?.[1]])
    expect(set).toEqual(
      ['ad_impressions_per_day', 'ad_impressions_per_month', 'ad_impressions_per_week', 'raw_events', 'video_stats_per_day', 'video_stats_per_month', 'video_stats_per_week'].map((t) => [t, '20']),
    )
  })

  it('compresses the per-video stats tables and videos in blocks of 4 KB (min_compress_block_size), every other table in the engine default blocks', async () => {
    const engines = await rows<{ name: string; engine_full: string }>(ch, "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' ORDER BY name")
    const set = engines.filter((t) => t.engine_full.includes('min_compress_block_size')).map((t) => [t.name, /min_compress_block_size = (\d+)/.exec(t.engine_full)?.[1]])
    expect(set).toEqual([
      ['video_stats_per_day', '4096'],
      ['video_stats_per_month', '4096'],
      ['video_stats_per_week', '4096'],
      ['videos', '4096'],
    ])
  })

  it('has every materialized view write TO a table of its own, so no hidden inner table goes uncommented', async () => {
    const views = await rows<{ name: string; create_table_query: string }>(ch, "SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView'")
    expect(views.length).toBeGreaterThan(0)
    for (const v of views) expect(v.create_table_query, v.name).toMatch(/ TO \S+/)
    expect(await rows(ch, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '.inner%'")).toEqual([])
  })
})
