import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createClient, type ClickHouseClient } from '@clickhouse/client'
import { createScopedChdbConnection, type StatementTiming } from './chdb-connection.ts'
import type { Settings } from './config.ts'
import type { EngineTurns } from './engine-turns.ts'

export type { ClickHouseClient, StatementTiming }

/**
 * Settings for a read of a few rows spread over many granules, such as a batch of videos'
 * rows holding large unique-viewer states (a 64 KiB granule then holds a few rows): the
 * engine reads below 163,840 rows or 24 MiB in one stream, and these split it over its
 * threads whatever it holds (a batch of the day's 98th–129th most watched videos over the
 * 100M-event day, alone in chDB on 2 cores: 32.9 → 23.4 ms, medians of 10).
 */
export const SPLIT_SMALL_READS = { merge_tree_min_rows_for_concurrent_read: '1', merge_tree_min_bytes_for_concurrent_read: '1' } as const

/** What an embedded client's connection adds (see chdb-connection.ts); a server's client has none. */
const embeddedOf = new WeakMap<ClickHouseClient, Pick<ReturnType<typeof createScopedChdbConnection>, 'turns' | 'watch'>>()
/** The turns of an embedded client's engine between reads and loads (none for a server: it runs them side by side). */
export const engineTurnsOf = (ch: ClickHouseClient): EngineTurns | undefined => embeddedOf.get(ch)?.turns
/**
 * Calls `fn` after each statement an embedded client's engine runs, with what it took, until
 * the returned function is called; undefined for a server (its own `system.query_log` keeps
 * that; chDB keeps none).
 */
export function watchEmbeddedStatements(ch: ClickHouseClient, fn: (timing: StatementTiming) => void): (() => void) | undefined {
  return embeddedOf.get(ch)?.watch(fn)
}

/**
 * The one ClickHouse client factory: embedded chDB under `DATA_DIR/clickhouse`
 * when `CLICKHOUSE_URL` is unset, a ClickHouse server over HTTP otherwise. Callers
 * get the same `@clickhouse/client` API in both modes.
 *
 * @example
 * const ch = createClickHouse(settings)
 * const rs = await ch.query({ query: 'SELECT {n:UInt8} AS n', query_params: { n: 1 }, format: 'JSONEachRow' })
 */
export function createClickHouse(
  settings: Pick<Settings, 'CLICKHOUSE_URL' | 'CLICKHOUSE_USER' | 'CLICKHOUSE_PASSWORD' | 'CLICKHOUSE_DATABASE' | 'dataDir' | 'INSERT_TIMEOUT_MS'>,
): ClickHouseClient {
  const common = {
    request_timeout: Math.max(settings.INSERT_TIMEOUT_MS, 30_000),
    clickhouse_settings: {
      // Materialized-view target tables must see the same dedup token as the raw table.
      deduplicate_blocks_in_dependent_materialized_views: 1,
      date_time_input_format: 'best_effort',
      output_format_json_quote_64bit_integers: 1,
    },
  } as const
  if (settings.CLICKHOUSE_URL === undefined) {
    const path = join(settings.dataDir, 'clickhouse')
    mkdirSync(path, { recursive: true })
    // chdb types its connection against @clickhouse/client-common while the client bundles
    // its own copy of the same interface; the shapes are identical at run time.
    // Settings are scoped per statement there (see chdb-connection.ts).
    let connection: NonNullable<Parameters<typeof createClient>[0]>['connection']
    let scoped: ReturnType<typeof createScopedChdbConnection>
    try {
      scoped = createScopedChdbConnection(path)
      connection = scoped as unknown as typeof connection
    } catch (err) {
      throw new Error(
        `cannot open the embedded ClickHouse data folder ${path}: another process (a running server?) owns it. ` +
          `Stop it, use another DATA_DIR, or set CLICKHOUSE_URL. (${err instanceof Error ? err.message : String(err)})`,
      )
    }
    const client = createClient({ ...common, connection })
    embeddedOf.set(client, scoped)
    return client
  }
  return createClient({
    ...common,
    url: settings.CLICKHOUSE_URL,
    username: settings.CLICKHOUSE_USER,
    password: settings.CLICKHOUSE_PASSWORD,
    database: settings.CLICKHOUSE_DATABASE,
  })
}
