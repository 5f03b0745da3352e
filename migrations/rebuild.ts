import type { ClickHouseClient } from '../lib/clickhouse.ts'

/** A table rebuilt with a new engine clause, and the text its `engine_full` holds once it has been. */
export type RebuiltTable = { name: string; engine: string; rebuiltWhen: string }

const identifier = /^[a-z_][a-z0-9_]*$/

/**
 * Rebuilds tables in place with a new engine clause (settings the engine will not
 * ALTER, such as the granule size), keeping their name, columns, comments and rows:
 * the materialized views that write into or read from them are dropped, each table is
 * copied into `<name>__rebuild` created `AS` it with the new engine and merged, the two
 * exchanged and the old rows dropped, then the views created again from their
 * migrations' SQL.
 *
 * Every step is safe to repeat, so a crash anywhere is finished by running it again: a
 * `<name>__rebuild` left behind is a partial copy (the table is not rebuilt yet) or the
 * old rows (it is), and is dropped either way before the table is looked at; views are
 * dropped and created with IF [NOT] EXISTS.
 *
 * Ingest must be idle meanwhile (see CodeMigration.requiresIdleIngest): with the views
 * gone, an insert into raw_events would reach no aggregate.
 */
export async function rebuildTables(ch: ClickHouseClient, opts: { tables: RebuiltTable[]; views: { name: string; sql: string }[] }): Promise<void> {
  for (const name of [...opts.tables.map((t) => t.name), ...opts.views.map((v) => v.name)])
    if (!identifier.test(name)) throw new Error(`not a table name: ${JSON.stringify(name)}`)
  for (const v of opts.views) await ch.command({ query: `DROP VIEW IF EXISTS ${v.name} SYNC` })
  for (const t of opts.tables) {
    const copy = `${t.name}__rebuild`
    await ch.command({ query: `DROP TABLE IF EXISTS ${copy} SYNC` })
    const rs = await ch.query({
      query: 'SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {name:String}',
      query_params: { name: t.name },
      format: 'JSONEachRow',
    })
    const [row] = (await rs.json()) as { engine_full: string }[]
    if (!row) throw new Error(`table ${t.name} does not exist`)
    if (row.engine_full.includes(t.rebuiltWhen)) continue
    await ch.command({ query: `CREATE TABLE ${copy} AS ${t.name} ENGINE = ${t.engine}` })
    await ch.command({ query: `INSERT INTO ${copy} SELECT * FROM ${t.name} SETTINGS optimize_on_insert = 0` })
    // Counted as reads see them (`final`: the keys of a table that merges equal keys, the rows of
    // one that does not), never as stored rows: either table's merges may join rows of equal keys
    // at any time, and a large copy is inserted as many parts, which merge while it is made (a
    // ReplacingMergeTree of the 100M-event day: 94,537,968 rows in the copy against 94,613,696, 8 December).
    const counts = await ch.query({ query: `SELECT (SELECT count() FROM ${t.name}) AS old, (SELECT count() FROM ${copy}) AS new SETTINGS final = 1`, format: 'JSONEachRow' })
    const [n] = (await counts.json()) as { old: string; new: string }[]
    if (n?.old !== n?.new) throw new Error(`copy of ${t.name} holds ${n?.new} rows as read, not ${n?.old}; run the migration again`)
    // Merged into parts of level 1 and more, as the old table's were: FINAL reads those
    // without merging them again, while an inserted (level 0) part is always merged as it
    // is read (the platform's top-5 of bench:api's day: 30 ms against 45 ms).
    await ch.command({ query: `OPTIMIZE TABLE ${copy} FINAL` })
    await ch.command({ query: `EXCHANGE TABLES ${t.name} AND ${copy}` })
    await ch.command({ query: `DROP TABLE ${copy} SYNC` })
  }
  for (const v of opts.views) await ch.command({ query: v.sql })
}
