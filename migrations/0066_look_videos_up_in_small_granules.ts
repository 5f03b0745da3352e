/**
 * `videos` in granules of 256 rows (the engine's default is 8,192) whose columns are
 * compressed in blocks of about 4 KB (the default 64 KB), so that looking videos up by id
 * reads little more than their rows.
 *
 * Every stats request looks its video up (its creator decides who may read it), and a cold
 * burst of requests looks up its videos in one statement. With every video registered (4.47M
 * on the 100M-event day), 32 videos took a median 14.5-18.4 ms in 8,192-row granules (each id
 * decompressing a 64 KB block of each column and merging 8,192 rows for FINAL), 9.9-11.1 in
 * 256-row granules and **6.1-6.4 ms** in 256-row granules of 4 KB blocks; one video 4.4-5.3
 * against 4.0-4.6 ms (chDB alone, in turns over copies of the table, test/bench/HISTORY.md,
 * thirty-eighth session). The table takes as much room on disk; its primary index in memory
 * grows from 547 to 17,457 marks (about 0.3 MB).
 *
 * The engine will not ALTER a table's granule size, so the table is rebuilt: copied into
 * `videos__rebuild` created `AS` it with the new engine and merged, the two exchanged, then
 * every row the old table holds that the new one does not (a video registered or changed
 * while the copy was made: nothing stops the analytics API meanwhile, and no materialized view
 * writes here) copied over before the old table is dropped. `videos` is a
 * ReplacingMergeTree(updated_at), so a row copied twice is one row once merged, and FINAL
 * reads it once anyway. Safe to repeat after a crash at any point: a `videos__rebuild` left
 * behind is a partial copy while `videos` is not yet rebuilt (dropped) or the old table once
 * it is (its missing rows copied over, then dropped).
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts'
import type { CodeMigration } from './runner.ts'

const ENGINE = 'ReplacingMergeTree(updated_at) ORDER BY video_id SETTINGS index_granularity = 256, min_compress_block_size = 4096'
/** What `engine_full` of the rebuilt table holds. */
const REBUILT = 'index_granularity = 256'
const COPY = 'videos__rebuild'

async function one<T>(ch: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T | undefined> {
  const rs = await ch.query({ query, query_params: params, format: 'JSONEachRow' })
  return ((await rs.json()) as T[])[0]
}

/** The old table's rows that `videos` lacks (by id and version) copied over, then the old table dropped. */
async function finish(ch: ClickHouseClient): Promise<void> {
  await ch.command({
    query: `INSERT INTO videos SELECT * FROM ${COPY} WHERE (video_id, updated_at) NOT IN (SELECT video_id, updated_at FROM videos) SETTINGS optimize_on_insert = 0`,
  })
  await ch.command({ query: `DROP TABLE ${COPY} SYNC` })
}

export default {
  requiresIdleIngest: false,
  async up(ch) {
    const tables = 'SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {name:String}'
    const table = await one<{ engine_full: string }>(ch, tables, { name: 'videos' })
    if (!table) throw new Error('table videos does not exist')
    const copyLeft = (await one(ch, tables, { name: COPY })) !== undefined
    if (table.engine_full.includes(REBUILT)) {
      // Exchanged before a crash: what is left is the old table.
      if (copyLeft) await finish(ch)
      return
    }
    await ch.command({ query: `DROP TABLE IF EXISTS ${COPY} SYNC` })
    await ch.command({ query: `CREATE TABLE ${COPY} AS videos ENGINE = ${ENGINE}` })
    // Row for row (no replacing on insert): the merge below keeps each video's latest version.
    await ch.command({ query: `INSERT INTO ${COPY} SELECT * FROM videos SETTINGS optimize_on_insert = 0` })
    // One part of level 1, which FINAL reads without merging it again.
    await ch.command({ query: `OPTIMIZE TABLE ${COPY} FINAL` })
    await ch.command({ query: `EXCHANGE TABLES videos AND ${COPY}` })
    await finish(ch)
  },
} satisfies CodeMigration
