import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { ClickHouseClient } from '../lib/clickhouse.ts'

const MIGRATIONS_DIR = dirname(fileURLToPath(import.meta.url))
const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.(sql|ts)$/
const LITERAL_OR_COMMENT = /'(?:[^'\\]|\\.|'')*'|--[^\n]*/g

/**
 * A numbered step of the schema: one SQL statement (`NNNN_name.sql`), or, for a change
 * that takes several steps which must survive a crash between any two (a table rebuilt
 * in place), a module (`NNNN_name.ts`) whose default export is a {@link CodeMigration}.
 */
export type Migration = { version: number; name: string; checksum: string } & ({ kind: 'sql'; sql: string } | { kind: 'code'; path: string })

/** What a `NNNN_name.ts` migration exports as its default. */
export type CodeMigration = {
  /**
   * It rewrites tables that ingest writes into (a rebuild drops and recreates the
   * materialized views), so nothing may be on its way into ClickHouse meanwhile: no edge
   * running, and no load of an edge's write-ahead log left unfinished, whose replay would
   * count its rows again in a table that no longer remembers their dedup token.
   */
  requiresIdleIngest: boolean
  /** Applies the step. Must be safe to run again after a crash at any point of it. */
  up(ch: ClickHouseClient, ctx: { sqlOf(version: number): string }): Promise<void>
}

export class MigrationError extends Error {
  override name = 'MigrationError'
}

/** Values rendered into the SQL files; the only template is `{{NAME}}`, always a quoted literal. */
export type MigrationVars = { SETTLEMENT_TZ: string }

function quoteLiteral(value: string): string {
  if (!/^[A-Za-z0-9_+\-/]+$/.test(value)) throw new MigrationError(`refusing to render unsafe literal ${JSON.stringify(value)}`)
  return `'${value}'`
}

const fileName = (m: Pick<Migration, 'version' | 'name'>) => `${String(m.version).padStart(4, '0')}_${m.name}`

/**
 * Reads the numbered migration files, in order: `.sql` ones rendered with `vars`, `.ts`
 * ones by path (imported when applied). Other `.ts` files (the runner, its helpers and
 * tests) are not migrations.
 */
export function loadMigrations(vars: MigrationVars, dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql') || (f.endsWith('.ts') && /^\d/.test(f) && !f.endsWith('.test.ts')))
    .sort()
  const seen = new Set<number>()
  return files.map((file): Migration => {
    const m = FILE_NAME.exec(file)
    if (!m) throw new MigrationError(`migration file ${file} is not named NNNN_name.sql (or NNNN_name.ts)`)
    const version = Number(m[1])
    if (seen.has(version)) throw new MigrationError(`two migrations are numbered ${m[1]}`)
    seen.add(version)
    const source = readFileSync(join(dir, file), 'utf8')
    if (m[3] === 'ts') return { version, name: m[2]!, kind: 'code', path: join(dir, file), checksum: codeChecksum(dir, source) }
    const sql = source.replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => {
      if (!(key in vars)) throw new MigrationError(`${file} uses unknown template {{${key}}}`)
      return quoteLiteral(vars[key as keyof MigrationVars])
    })
    // Comments go, string literals stay whole (a literal may hold -- or ;).
    const body = sql.replace(LITERAL_OR_COMMENT, (t) => (t.startsWith("'") ? t : '')).trim().replace(/;\s*$/, '')
    if (body.replace(LITERAL_OR_COMMENT, "''").includes(';')) throw new MigrationError(`${file} holds more than one statement; use one statement per file`)
    return { version, name: m[2]!, kind: 'sql', sql: body, checksum: createHash('sha256').update(body).digest('hex') }
  })
}

/**
 * A code migration's checksum covers its own text and that of the modules of this folder
 * it imports (`./rebuild.ts`; type imports aside): what it does may change in either.
 */
function codeChecksum(dir: string, source: string): string {
  const hash = createHash('sha256').update(source)
  for (const [, local] of source.matchAll(/^import\s+(?!type\s)[^\n]*?from\s+'\.\/([a-z0-9_-]+\.ts)'/gm)) hash.update(readFileSync(join(dir, local!), 'utf8'))
  return hash.digest('hex')
}

/**
 * Checksums a released code step was applied with before a fix to a module of this folder it
 * imports, what the step leaves unchanged: a database that recorded one of them has applied
 * the step (any other difference is still refused). rebuild.ts's check of its copy (counted as
 * read, no longer as stored rows, which the copy's own merges could change: 8 December) changed
 * 0060's and 0062's.
 */
export const EARLIER_CHECKSUMS: ReadonlyMap<number, readonly string[]> = new Map([
  [60, ['7de98916f907d992acf73fdfb518ea1c59b2783447455dec8c9eaaf889574727']],
  [62, ['87a67a3f2483fd44e2ad50ba57228fb449ad3d6a3861d906488d1a4d362cf558']],
])

async function importCodeMigration(m: Extract<Migration, { kind: 'code' }>): Promise<CodeMigration> {
  const mod = (await import(m.path)) as { default?: unknown }
  const code = mod.default
  if (typeof code !== 'object' || code === null || !('up' in code) || typeof code.up !== 'function' || !('requiresIdleIngest' in code) || typeof code.requiresIdleIngest !== 'boolean')
    throw new MigrationError(`${fileName(m)}.ts must export default { requiresIdleIngest, up(ch, ctx) }`)
  return code as CodeMigration
}

const appliedRow = z.object({ version: z.coerce.number(), name: z.string(), checksum: z.string(), applied_at: z.string() })

async function appliedMigrations(ch: ClickHouseClient): Promise<Map<number, z.infer<typeof appliedRow>>> {
  await ch.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations
      (
        version UInt32 COMMENT 'Number of the migration file',
        name String COMMENT 'Name of the migration file',
        checksum String COMMENT 'sha256 of the SQL as applied',
        applied_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'When it was applied'
      )
      ENGINE = MergeTree ORDER BY version
      COMMENT 'Migrations applied to this database'`,
  })
  const rs = await ch.query({ query: 'SELECT version, name, checksum, toUnixTimestamp64Milli(applied_at) AS applied_at FROM schema_migrations ORDER BY version', format: 'JSONEachRow' })
  return new Map((await rs.json()).map((r) => appliedRow.parse(r)).map((r) => [r.version, r]))
}

export type MigrateOptions = {
  /** The migrations folder (tests). */
  dir?: string
  /**
   * Called once, before the first pending migration that requires idle ingest (on a
   * database that already had migrations: a new one has no ingest to wait for). It must
   * resolve only when nothing of ingest is on its way into ClickHouse: the embedded
   * server finishes its own write-ahead log there. Without it such a migration is refused.
   */
  drainIngest?: () => Promise<void>
  /**
   * Called once after the pending migrations when one of them rewrote tables that ingest
   * writes into (on a database that had migrations): what analytics derived from the
   * old tables must go (it bumps the aggregates generation; a rebuilt table numbers its
   * blocks from 1 again, see analytics/stats/viewer-sets.ts).
   */
  tablesRewritten?: () => Promise<void>
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in order. Refuses to
 * run when a recorded migration's file (or a value rendered into it) has changed since.
 * Safe to run any number of times.
 *
 * @example
 * const applied = await migrate(ch, { SETTLEMENT_TZ: 'Asia/Seoul' })
 */
export async function migrate(ch: ClickHouseClient, vars: MigrationVars, opts: MigrateOptions = {}): Promise<Migration[]> {
  const applied = await appliedMigrations(ch)
  const migrations = loadMigrations(vars, opts.dir)
  for (const m of migrations) {
    const prior = applied.get(m.version)
    if (prior && prior.checksum !== m.checksum && !EARLIER_CHECKSUMS.get(m.version)?.includes(prior.checksum))
      throw new MigrationError(
        `migration ${fileName(m)} was changed after it was applied ` +
          `(or SETTLEMENT_TZ differs from the one the data was aggregated with); add a new migration instead`,
      )
  }
  const pending = migrations.filter((m) => !applied.has(m.version))
  const code = new Map<number, CodeMigration>()
  for (const m of pending) if (m.kind === 'code') code.set(m.version, await importCodeMigration(m))
  const needsDrain = applied.size > 0 && pending.some((m) => code.get(m.version)?.requiresIdleIngest)
  if (needsDrain && !opts.drainIngest) {
    const first = pending.find((m) => code.get(m.version)?.requiresIdleIngest)!
    throw new MigrationError(
      `migration ${fileName(first)} rewrites tables that ingest writes into and needs ingest stopped: ` +
        'stop every ingest edge (each finishes its write-ahead log as it stops), then run `npm run migrate -- --ingest-stopped`',
    )
  }
  const sqlOf = (version: number) => {
    const m = migrations.find((x) => x.version === version)
    if (!m || m.kind !== 'sql') throw new MigrationError(`there is no SQL migration numbered ${version}`)
    return m.sql
  }
  let drained = false
  for (const m of pending) {
    if (m.kind === 'sql') await ch.command({ query: m.sql })
    else {
      const step = code.get(m.version)!
      if (step.requiresIdleIngest && needsDrain && !drained) {
        await opts.drainIngest!()
        drained = true
      }
      await step.up(ch, { sqlOf })
    }
    await ch.insert({
      table: 'schema_migrations',
      values: [{ version: m.version, name: m.name, checksum: m.checksum }],
      format: 'JSONEachRow',
    })
  }
  if (needsDrain) await opts.tablesRewritten?.()
  return pending
}

/**
 * When the last migration that required idle ingest was applied (epoch ms), if any: a
 * write-ahead log load older than that may already be counted in the tables it rebuilt.
 */
export async function idleIngestMigrationAppliedAt(ch: ClickHouseClient, dir = MIGRATIONS_DIR): Promise<number | undefined> {
  const applied = await appliedMigrations(ch)
  let latest: number | undefined
  for (const file of readdirSync(dir)) {
    const m = FILE_NAME.exec(file)
    if (!m || m[3] !== 'ts') continue
    const row = applied.get(Number(m[1]))
    if (!row) continue
    const code = await importCodeMigration({ version: Number(m[1]), name: m[2]!, kind: 'code', path: join(dir, file), checksum: '' })
    if (code.requiresIdleIngest) latest = Math.max(latest ?? 0, Number(row.applied_at))
  }
  return latest
}

/** Applies settings that live in the schema but may change between runs (raw-event retention). */
export async function applyRuntimeSchemaSettings(ch: ClickHouseClient, settings: { RAW_EVENTS_TTL_DAYS: number }): Promise<void> {
  await ch.command({
    query: `ALTER TABLE raw_events MODIFY TTL toDateTime(received_at) + toIntervalDay({days:UInt32})`,
    query_params: { days: settings.RAW_EVENTS_TTL_DAYS },
    clickhouse_settings: { materialize_ttl_after_modify: 0 },
  })
}
