/**
 * The engine side of bench:ingest, each in its own process (one process owns a chDB
 * data folder):
 *
 *   bun test/bench/ingest-engine.ts verify <dataDir> <ackedFile> <exportFile> <exportRows>
 *     after the server stopped: every acknowledged id stored exactly once, no id twice,
 *     aggregates equal to the raw table; exports up to <exportRows> stored rows.
 *   bun test/bench/ingest-engine.ts ceiling <exportFile> <blockRows>
 *     the same rows inserted straight into a fresh engine (raw_events and its views)
 *     from this one process, the way the edge inserts them (JSONEachRow through the client).
 *
 * Prints one JSON line with the figures.
 */
import { readFileSync, rmSync } from 'node:fs'
import { createClickHouse } from '../../lib/clickhouse.ts'
import { loadSettings } from '../../lib/config.ts'
import { applyRuntimeSchemaSettings, migrate } from '../../migrations/runner.ts'
import { rows, tempDir } from '../harness/engines.ts'

const [mode, ...args] = process.argv.slice(2)

if (mode === 'verify') {
  const [dataDir, ackedFile, exportFile, exportRows] = args as [string, string, string, string]
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
    const [agg] = await rows<{ views: string; watch: string; ads: string }>(
      ch,
      'SELECT sum(views) AS views, sum(watch_ms) AS watch, sum(ad_impressions) AS ads FROM video_stats_per_day',
    )
    const [raw] = await rows<{ views: string; watch: string; ads: string }>(
      ch,
      `SELECT countIf(type = 'play' AND outcome = 'counted') AS views, sumIf(credited_watch_ms, type = 'progress' AND outcome = 'counted') AS watch,
              countIf(type = 'ad_impression' AND outcome = 'counted') AS ads FROM raw_events`,
    )
    const outcomes = await rows<{ outcome: string; reason: string; n: string }>(ch, 'SELECT outcome, reason, count() AS n FROM raw_events GROUP BY outcome, reason ORDER BY n DESC')
    await ch.command({ query: 'DROP TABLE bench_acked' })
    rmSync(exportFile, { force: true })
    await ch.command({ query: `SELECT * FROM raw_events LIMIT ${Number(exportRows)} INTO OUTFILE '${exportFile.replace(/'/g, '')}' FORMAT JSONEachRow` })
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
        aggregates_match_raw: agg!.views === raw!.views && agg!.watch === raw!.watch && agg!.ads === raw!.ads,
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
    // Rows as the edge holds them: objects with numbers, before the client serialises them.
    const numeric = ['position_ms', 'watched_ms', 'credited_watch_ms', 'video_duration_ms'] as const
    const all = readFileSync(exportFile, 'utf8').split('\n').filter(Boolean).map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>
      for (const k of numeric) r[k] = Number(r[k])
      return r
    })
    const t0 = performance.now()
    for (let i = 0; i < all.length; i += blockRows) {
      const block = all.slice(i, i + blockRows)
      await ch.insert({
        table: 'raw_events',
        values: block,
        format: 'JSONEachRow',
        clickhouse_settings: { insert_deduplication_token: crypto.randomUUID(), deduplicate_blocks_in_dependent_materialized_views: 1, max_insert_block_size: String(Math.max(block.length, 1_048_576)) },
      })
    }
    const seconds = (performance.now() - t0) / 1000
    const [check] = await rows<{ n: string }>(ch, 'SELECT count() AS n FROM raw_events')
    console.log(JSON.stringify({ rows: all.length, stored: Number(check!.n), seconds, rows_per_second: all.length / seconds, block_rows: blockRows }))
  } finally {
    await ch.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
} else {
  console.error('usage: ingest-engine.ts verify <dataDir> <ackedFile> <exportFile> <exportRows> | ceiling <exportFile> <blockRows>')
  process.exit(2)
}
