import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { ClickHouseClient } from '../lib/clickhouse.ts'

const MIGRATIONS_DIR = dirname(fileURLToPath(import.meta.url))
const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/
const LITERAL_OR_COMMENT = /'(?:[^'\\]|\\.|'')*'|--[^\n]*/g

export type Migration = { version: number; name: string; sql: string; checksum: string }

export class MigrationError extends Error {
  override name = 'MigrationError'
}

/** Values rendered into the SQL files; the only template is `{{NAME}}`, always a quoted literal. */
export type MigrationVars = { SETTLEMENT_TZ: string }

function quoteLiteral(value: string): string {
  if (!/^[A-Za-z0-9_+\-/]+$/.test(value)) throw new MigrationError(`refusing to render unsafe literal ${JSON.stringify(value)}`)
  return `'${value}'`
}

/** Reads the numbered `.sql` files, in order, rendered with `vars`. */
export function loadMigrations(vars: MigrationVars, dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()
  const seen = new Set<number>()
  return files.map((file) => {
    const m = FILE_NAME.exec(file)
    if (!m) throw new MigrationError(`migration file ${file} is not named NNNN_name.sql`)
    const version = Number(m[1])
    if (seen.has(version)) throw new MigrationError(`two migrations are numbered ${m[1]}`)
    seen.add(version)
    const source = readFileSync(join(dir, file), 'utf8')
    const sql = source.replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => {
      if (!(key in vars)) throw new MigrationError(`${file} uses unknown template {{${key}}}`)
      return quoteLiteral(vars[key as keyof MigrationVars])
    })
    // Comments go, string literals stay whole (a literal may hold -- or ;).
    const body = sql.replace(LITERAL_OR_COMMENT, (t) => (t.startsWith("'") ? t : '')).trim().replace(/;\s*$/, '')
    if (body.replace(LITERAL_OR_COMMENT, "''").includes(';')) throw new MigrationError(`${file} holds more than one statement; use one statement per file`)
    return { version, name: m[2]!, sql: body, checksum: createHash('sha256').update(body).digest('hex') }
  })
}

const appliedRow = z.object({ version: z.coerce.number(), name: z.string(), checksum: z.string() })

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in order. Refuses to
 * run when a recorded migration's file (or a value rendered into it) has changed since.
 * Safe to run any number of times.
 *
 * @example
 * const applied = await migrate(ch, { SETTLEMENT_TZ: 'Asia/Seoul' })
 */
export async function migrate(ch: ClickHouseClient, vars: MigrationVars, dir = MIGRATIONS_DIR): Promise<Migration[]> {
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
  const rs = await ch.query({ query: 'SELECT version, name, checksum FROM schema_migrations ORDER BY version', format: 'JSONEachRow' })
  const applied = new Map((await rs.json()).map((r) => appliedRow.parse(r)).map((r) => [r.version, r]))
  const migrations = loadMigrations(vars, dir)
  for (const m of migrations) {
    const prior = applied.get(m.version)
    if (prior && prior.checksum !== m.checksum)
      throw new MigrationError(
        `migration ${String(m.version).padStart(4, '0')}_${m.name} was changed after it was applied ` +
          `(or SETTLEMENT_TZ differs from the one the data was aggregated with); add a new migration instead`,
      )
  }
  const pending = migrations.filter((m) => !applied.has(m.version))
  for (const m of pending) {
    await ch.command({ query: m.sql })
    await ch.insert({
      table: 'schema_migrations',
      values: [{ version: m.version, name: m.name, checksum: m.checksum }],
      format: 'JSONEachRow',
    })
  }
  return pending
}

/** Applies settings that live in the schema but may change between runs (raw-event retention). */
export async function applyRuntimeSchemaSettings(ch: ClickHouseClient, settings: { RAW_EVENTS_TTL_DAYS: number }): Promise<void> {
  await ch.command({
    query: `ALTER TABLE raw_events MODIFY TTL toDateTime(received_at) + toIntervalDay({days:UInt32})`,
    query_params: { days: settings.RAW_EVENTS_TTL_DAYS },
    clickhouse_settings: { materialize_ttl_after_modify: 0 },
  })
}
