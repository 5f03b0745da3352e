import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import type { Settings } from '../../lib/config.ts'
import type { AnalyticsSettings } from '../settings.ts'
import { analystEngineSettings } from './analyst-client.ts'

/**
 * The statements that give a ClickHouse server a read-only `analyst` role for direct
 * access: SELECT on the product's database, and a settings profile that makes every
 * session of the role read-only with the same limits as `/clickhouse`. Idempotent.
 * The database name is a plain identifier (checked by lib/config.ts) and the limits
 * are integers (and `throw`), so they are written into the DDL, which takes no query parameters.
 */
export function analystRoleStatements(database: string, s: AnalyticsSettings): string[] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw new Error(`database name ${JSON.stringify(database)} is not a plain identifier`)
  // The limits of every /clickhouse query (analystEngineSettings, readonly last): integers, and one word quoted.
  const settings = Object.entries(analystEngineSettings(s)).map(([name, value]) => `${name} = ${/^\d+$/.test(String(value)) ? value : `'${value}'`}`)
  return ['CREATE ROLE IF NOT EXISTS analyst', `GRANT SELECT ON \`${database}\`.* TO analyst`, `CREATE SETTINGS PROFILE IF NOT EXISTS analyst_readonly SETTINGS ${settings.join(', ')} TO analyst`]
}

/**
 * Server mode: creates the read-only `analyst` role (run once at start-up by a user
 * allowed to manage access). Embedded mode: nothing to do, since chDB has no access
 * control (`CREATE ROLE` fails there) and `/clickhouse` is the analysts' way in.
 *
 * Then, per analyst: `CREATE USER alice IDENTIFIED BY '…' DEFAULT ROLE analyst; GRANT analyst TO alice`.
 */
export async function ensureAnalystRole(ch: ClickHouseClient, settings: Pick<Settings, 'embedded' | 'CLICKHOUSE_DATABASE'>, s: AnalyticsSettings): Promise<'created' | 'embedded'> {
  if (settings.embedded) return 'embedded'
  for (const query of analystRoleStatements(settings.CLICKHOUSE_DATABASE, s)) await ch.command({ query })
  return 'created'
}
