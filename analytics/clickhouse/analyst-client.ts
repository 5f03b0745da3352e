import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createClient, type ClickHouseClient } from '@clickhouse/client'
import { createChdbConnection } from 'chdb/connection'
import type { Settings } from '../../lib/config.ts'
import type { AnalyticsSettings } from '../settings.ts'

/**
 * Engine settings of every analyst query. Order matters: the limits are set first
 * and `readonly = 1` last, because once a session is read-only the engine refuses
 * any further settings change (re-setting the same value is allowed, so the next
 * query of the session passes the same list).
 */
export function analystEngineSettings(s: AnalyticsSettings) {
  return {
    max_execution_time: s.ANALYST_MAX_EXECUTION_SECONDS,
    max_result_rows: String(s.ANALYST_MAX_RESULT_ROWS),
    max_result_bytes: String(s.ANALYST_MAX_RESULT_BYTES),
    result_overflow_mode: 'throw',
    max_memory_usage: String(s.ANALYST_MAX_MEMORY_BYTES),
    // A quarter: at half, a GROUP BY's last allocations before it spilled passed the bound (64 MiB) in a probe.
    max_bytes_before_external_group_by: String(Math.floor(s.ANALYST_MAX_MEMORY_BYTES / 4)),
    max_bytes_before_external_sort: String(Math.floor(s.ANALYST_MAX_MEMORY_BYTES / 4)),
    readonly: '1',
  } as const
}

/**
 * A ClickHouse client that can only read.
 * - Embedded: a second chDB session on the same data folder. chDB applies settings
 *   with `SET` on the session, so `readonly = 1` holds for every query of this
 *   session and never leaks into the session the ingest and jobs write with.
 * - Server: CLICKHOUSE_ANALYST_USER (a user with the read-only `analyst` role) when
 *   set, else the main user; `readonly = 1` is sent with every query either way.
 */
export function createAnalystClickHouse(settings: Settings, s: AnalyticsSettings): ClickHouseClient {
  const common = { request_timeout: (s.ANALYST_MAX_EXECUTION_SECONDS + 5) * 1000, clickhouse_settings: analystEngineSettings(s) }
  if (settings.embedded) {
    const path = join(settings.dataDir, 'clickhouse')
    mkdirSync(path, { recursive: true })
    const connection = createChdbConnection({ path }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection']
    return createClient({ ...common, connection })
  }
  return createClient({
    ...common,
    url: settings.CLICKHOUSE_URL,
    username: s.CLICKHOUSE_ANALYST_USER ?? settings.CLICKHOUSE_USER,
    password: s.CLICKHOUSE_ANALYST_USER ? s.CLICKHOUSE_ANALYST_PASSWORD : settings.CLICKHOUSE_PASSWORD,
    database: settings.CLICKHOUSE_DATABASE,
  })
}
