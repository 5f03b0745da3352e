/**
 * The engine side of bench:ingest, each in its own process (one process owns a chDB
 * data folder):
 *
 *   bun test/bench/ingest-engine.ts verify <dataDir> <ackedFile> <exportFile> <exportRows> [arrival|storage]
 *     after the server stopped: every acknowledged id stored exactly once, no id twice,
 *     aggregates equal to the raw table; exports up to <exportRows> stored rows, the first the
 *     edge received, in that order (arrival, the default), or as raw_events stores them (storage:
 *     sorted by video, which the engine inserted ~10 % faster than the same rows as they arrived,
 *     6 December, HISTORY.md; the ceiling's order until then).
 *   bun test/bench/ingest-engine.ts ceiling <exportFile> <blockRows>
 *     the same rows inserted straight into a fresh engine (raw_events and its views)
 *     from this one process, the way the edge's loader inserts them (its text, one block a load).
 *
 * Prints one JSON line with the figures.
 */
import { readFileSync, rmSync } from 'node:fs'
import { createClickHouse } from '../../lib/clickhouse.ts'
import { loadSettings } from '../../lib/config.ts'
import { applyRuntimeSchemaSettings, migrate } from '../../migrations/runner.ts'
import { rows, tempDir } from '../harness/engines.ts'
import { insertRawEvents, RAW_COLUMNS } from '../../ingest/events/rows.ts'

/** What `verify` prints: the stopped server's folder checked against the acknowledged ids. */
export type Verify = {
  acked_events: number
  stored_rows: number
  stored_ids: number
  acked_stored_rows: number
  acked_stored_ids: number
  acked_lost: number
  rows_stored_twice: number
  aggregates_match_raw: boolean
  counted_views: number
  outcomes: Record<string, number>
}

const [mode, ...args] = process.argv.slice(2)

if (mode === 'verify') {
  const [dataDir, ackedFile, exportFile, exportRows, order = 'arrival'] = args as [string, string, string, string, string?]
  if (order !== 'arrival' && order !== 'storage') throw new Error(`the ceiling's order must be arrival or storage, not ${order}`)
  const ch = createClickHouse(loadSettings({ DATA_DIR: dataDir }))
  try {
    const acked = JSON.parse(readFileSync(ackedFile, 'utf8')) as number[]
    await ch.command({ query: 'DROP TABLE IF EXISTS bench_acked' })
    await ch.command({ query: 'CREATE TABLE bench_acked (slot String, n UInt64) ENGINE = Memory' })
    await ch.insert({ table: 'bench_acked', values: acked.map((n, i) => ({ slot: String(i).padStart(8, '0'), n })), format: 'JSONEachRow' })
    const [all] = await rows<{ rows: string; ids: string }>(ch, 'SELECT count() AS rows, uniqExact(event_id) AS ids FROM raw_events')
    const [mine] = await rows<{ stored_rows: string; stored_ids: string }>(
      ch,
      `SELECT count() AS stored_rows, uniqExact(id) AS stored_ids
       FROM (SELECT toString(event_id) AS id, substring(id, 1, 8) AS slot, toUInt64(substring(id, 25, 12)) AS seq
             FROM raw_events WHERE substring(toString(event_id), 10, 4) = 'b0b0') AS r
       INNER JOIN bench_acked AS a ON r.slot = a.slot
       WHERE r.seq < a.n`,
    )
    // Each grain's totals, and the ad tables', must equal the raw table's.
    const grains = await Promise.all(
      ['day', 'week', 'month'].map(async (g) => {
        const [t] = await rows<{ views: string; watch: string; ads: string }>(ch, `SELECT sum(views) AS views, sum(watch_ms) AS watch, sum(ad_impressions) AS ads FROM video_stats_per_${g}`)
        const [a] = await rows<{ ads: string }>(ch, `SELECT sum(impressions) AS ads FROM ad_impressions_per_${g}`)
        return { ...t!, adTable: a!.ads }
      }),
    )
    const [raw] = await rows<{ views: string; watch: string; ads: string }>(
      ch,
      `SELECT countIf(type = 'play' AND outcome = 'counted') AS views, sumIf(credited_watch_ms, type = 'progress' AND outcome = 'counted') AS watch,
              countIf(type = 'ad_impression' AND outcome = 'counted') AS ads FROM raw_events`,
    )
    const outcomes = await rows<{ outcome: string; reason: string; n: string }>(ch, 'SELECT outcome, reason, count() AS n FROM raw_events GROUP BY outcome, reason ORDER BY n DESC')
    await ch.command({ query: 'DROP TABLE bench_acked' })
    rmSync(exportFile, { force: true })
    // The rows as the edge's loader sends them: its TabSeparated columns, times as epoch ms.
    const columns = RAW_COLUMNS.map((c) => (c === 'event_time' || c === 'received_at' ? `toUnixTimestamp64Milli(${c})` : c)).join(', ')
    await ch.command({
      query: `SELECT ${columns} FROM raw_events ${order === 'arrival' ? 'ORDER BY received_at' : ''} LIMIT {n:UInt64} INTO OUTFILE '${exportFile.replace(/'/g, '')}' FORMAT TabSeparated`,
      query_params: { n: Number(exportRows) },
    })
    const ackedTotal = acked.reduce((a, b) => a + b, 0)
    console.log(
      JSON.stringify({
        acked_events: ackedTotal,
        stored_rows: Number(all!.rows),
        stored_ids: Number(all!.ids),
        acked_stored_rows: Number(mine!.stored_rows),
        acked_stored_ids: Number(mine!.stored_ids),
        acked_lost: ackedTotal - Number(mine!.stored_ids),
        rows_stored_twice: Number(all!.rows) - Number(all!.ids),
        aggregates_match_raw: grains.every((g) => g.views === raw!.views && g.watch === raw!.watch && g.ads === raw!.ads && g.adTable === raw!.ads),
        counted_views: Number(raw!.views),
        outcomes: Object.fromEntries(outcomes.map((o) => [`${o.outcome}${o.reason ? `/${o.reason}` : ''}`, Number(o.n)])),
      }),
    )
  } finally {
    await ch.close()
  }
} else if (mode === 'ceiling') {
  const [exportFile, blockRowsArg] = args as [string, string]
  const blockRows = Number(blockRowsArg)
  const dataDir = tempDir('cs-bench-ceiling-')
  const ch = createClickHouse(loadSettings({ DATA_DIR: dataDir }))
  try {
    await migrate(ch, { SETTLEMENT_TZ: 'Asia/Seoul' })
    await applyRuntimeSchemaSettings(ch, { RAW_EVENTS_TTL_DAYS: 400 })
    // Blocks cut from the file's text at line ends, as the loader joins its entries' texts:
    // no string per row (2M of them next to the whole text crashed Bun).
    const text = readFileSync(exportFile, 'utf8')
    const blocks: string[] = []
    let lines = 0
    for (let start = 0; start < text.length; ) {
      let end = start
      let n = 0
      while (n < blockRows && end < text.length) {
        const nl = text.indexOf('\n', end)
        end = nl < 0 ? text.length : nl + 1
        n++
      }
      blocks.push(text.slice(start, end))
      lines += n
      start = end
    }
    const t0 = performance.now()
    for (const block of blocks) await insertRawEvents(ch, block, crypto.randomUUID())
    const seconds = (performance.now() - t0) / 1000
    const [check] = await rows<{ n: string }>(ch, 'SELECT count() AS n FROM raw_events')
    console.log(JSON.stringify({ rows: lines, stored: Number(check!.n), seconds, rows_per_second: lines / seconds, block_rows: blockRows }))
  } finally {
    await ch.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
} else {
  console.error('usage: ingest-engine.ts verify <dataDir> <ackedFile> <exportFile> <exportRows> [arrival|storage] | ceiling <exportFile> <blockRows>')
  process.exit(2)
}
