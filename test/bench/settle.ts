/**
 * bench:settle — one realistic day generated inside the engine (INSERT … SELECT from
 * numbers() through raw_events and its materialized views), then the nightly job for
 * that day through the real `settle()`, the naive settlement straight from the raw
 * events, and one full scan of the raw table (the floor); then the merges the engine makes
 * of the stats tables' periods once quiet, timed apart.
 *
 *   npm run bench:settle -- [--events 100000000] [--videos 5000000] [--day yesterday in Seoul]
 *     [--data-dir data/bench (data/bench-peer with --peer)] [--peer [--peer-events 10000000]] [--no-merge-wait]
 *     [--statement-rows SETTLEMENT_STATEMENT_ROWS] [--history videos] [--job-ab 0] [--smoke] [--out file.json]
 *
 * The job writes the day's lines in statements of at most --statement-rows lines (counted
 * with uniq in its aggregates); with --job-ab N it then settles the day again N times each way in turns, its
 * lines in one statement and in those statements, on the parts the job met.
 *
 * The data folder is kept for bench:api. With --peer the same day (of --peer-events
 * events) is also loaded into MariaDB and settled there with plain SQL (see settle-peer.ts).
 */
import { rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { createClickHouse } from '../../lib/clickhouse.ts'
import { loadSettings } from '../../lib/config.ts'
import { createServices } from '../../lib/create-services.ts'
import { settle } from '../../jobs/settlement/job.ts'
import { rateCardFor } from '../../jobs/settlement/rate-cards.ts'
import { applyRuntimeSchemaSettings, migrate } from '../../migrations/runner.ts'
import { rows, startTestRedis } from '../harness/engines.ts'
import { fmt, loadNow, num, parseFlags, printTable, ROOT, writeResult } from './lib.ts'
import { benchCreatorId, dayBounds, fullScanSql, generateDaySql, naiveSettlementSql, seedAdCumulativeSql, seedVideoCumulativeSql, type Card } from './settle-data.ts'
import { runPeer, type PeerResult } from './settle-peer.ts'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'

const flags = parseFlags(process.argv.slice(2))
const smoke = flags.has('smoke')
const peer = flags.has('peer')
const events = num(flags, 'events', smoke ? 200_000 : peer ? num(flags, 'peer-events', 10_000_000) : 100_000_000)
const videos = num(flags, 'videos', smoke ? 10_000 : Math.max(1000, Math.round(events / 20)))
const creators = Math.max(1, Math.round(videos / 20))
// Yesterday in Seoul by default: settled and provisional, so the server's scheduler finds
// nothing to catch up when bench:api starts on this data folder.
const day = flags.get('day') ?? new Date(Date.now() + 9 * 3_600_000 - 86_400_000).toISOString().slice(0, 10)
const jobAb = num(flags, 'job-ab', 0)
const dataDir = resolve(ROOT, flags.get('data-dir') ?? (smoke ? 'data/bench-smoke' : peer ? 'data/bench-peer' : 'data/bench'))
const bounds = dayBounds(day)
// Videos with lifetime counts before the day (the cumulative tables), every one by default: a platform of 5M videos
// has settled most of them before. Until 7 December 100,000, which left the statements' lifetime sources small.
const history = Math.min(videos, num(flags, 'history', videos))
/** The stats tables (partitioned by period, migration 0062), whose quiet periods the engine merges. */
const STATS_TABLES = ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month']

rmSync(dataDir, { recursive: true, force: true })
const redis = await startTestRedis()
const settings = loadSettings({ DATA_DIR: dataDir, REDIS_URL: redis.url, LOG_LEVEL: 'warn' })
const statementRows = num(flags, 'statement-rows', settings.SETTLEMENT_STATEMENT_ROWS)
const ch = createClickHouse(settings)
const timings: Record<string, number> = {}
const time = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
  const t0 = performance.now()
  const out = await f()
  timings[label] = (performance.now() - t0) / 1000
  console.error(`[bench:settle] ${label}: ${timings[label]!.toFixed(2)} s (load ${loadNow()})`)
  return out
}

let figures: Record<string, unknown>
let peerResult: PeerResult | undefined
try {
  console.error(`[bench:settle] ${fmt(events)} events over ${fmt(videos)} videos on ${day}, data ${dataDir}; load ${loadNow()}`)
  await migrate(ch, { SETTLEMENT_TZ: settings.SETTLEMENT_TZ })
  await applyRuntimeSchemaSettings(ch, settings)
  const top = Math.max(1000, Math.round(events / 50)) // lifetime views of the most popular video before the day
  const seedParams = { previous: bounds.previous, top, history, n: events, videos }
  await ch.command({ query: seedVideoCumulativeSql, query_params: seedParams })
  await ch.command({ query: seedAdCumulativeSql, query_params: seedParams })

  const loadBefore = loadNow()
  await time('generate', () =>
    ch.command({
      query: generateDaySql,
      query_params: { n: events, videos, creators, creator0: benchCreatorId(), from: bounds.from },
      clickhouse_settings: { max_insert_threads: '2', max_threads: 2, max_block_size: '65536', min_insert_block_size_rows: '1048576' },
    }),
  )
  const [counts] = await rows<{ raw: string; vids: string; day_rows: string }>(
    ch,
    'SELECT (SELECT count() FROM raw_events) AS raw, (SELECT uniqExact(video_id) FROM raw_events) AS vids, (SELECT count() FROM video_stats_per_day) AS day_rows',
  )

  // The nightly job runs hours after most of its day arrived, when the engine has merged what
  // it took in. Generation puts the whole day in within minutes, so the job waits for the merges
  // it started (--no-merge-wait times it while they run: on 3 December 21.6 s against 8-12 s).
  const partsAfterGeneration = await activeParts(ch)
  const mergesWait = flags.has('no-merge-wait') ? null : await time('merges after generation', () => waitForMerges(ch))
  const partsBeforeJob = await activeParts(ch)

  const services = await createServices(settings, { ch, redis: redis.client, migrate: false })
  const later = () => new Date(Math.max(Date.now(), new Date(`${day}T00:00:00+09:00`).getTime() + 27 * 3_600_000))
  // An older --day is past its lateness window: the job then settles it as final.
  const finalize = later().getTime() >= new Date(`${day}T00:00:00+09:00`).getTime() + 86_400_000 + settings.LATENESS_WINDOW_HOURS * 3_600_000
  const [dayRows] = await rows<{ n: string }>(ch, 'SELECT count() AS n FROM video_stats_per_day WHERE day = {day:Date}', { day })
  const job = await time('nightly job (settle)', () => settle(services, { kind: 'days', from: day, to: day, finalize }, { now: later, statementRows }))
  const outcome = job.days[0]!
  // The same day settled again in turns: one statement, then statements of --statement-rows (a final day never changes).
  const jobAbRuns: { statement_rows: number; seconds: number; checksum: string }[] = []
  for (let i = 0; i < (finalize ? 0 : jobAb); i++)
    for (const n of [1_000_000_000, statementRows]) {
      const t0 = performance.now()
      const again = await settle(services, { kind: 'days', from: day, to: day }, { now: later, statementRows: n })
      jobAbRuns.push({ statement_rows: n, seconds: +((performance.now() - t0) / 1000).toFixed(2), checksum: again.days[0]!.checksum })
    }

  const card = await rateCardFor(ch, day)
  const c: Card = { floors: card.tierFloors.map(Number), videoRates: card.videoRatesTenths.map(Number), adRates: card.adRatesTenths.map(Number) }
  const [naive] = await time('naive (from raw events)', () =>
    rows<Record<string, string>>(ch, naiveSettlementSql(c), { from: bounds.from, to: bounds.to }),
  )
  await time('full scan of raw_events (floor)', () => rows(ch, fullScanSql))
  // Once a period of the stats tables has taken no insert for an hour the engine merges its
  // partition into one part (migration 0062). Done here at once, timed apart from the job (which
  // at night may run before it): the folder is left as the engine would leave it, so bench:api
  // reads the day as it is read an hour after its end, and no such merge starts during its runs.
  const quiet = await time('merges of the quiet periods', () => mergeQuietPeriods(ch))
  const partsPerPeriodAfter = Math.max(0, ...(await statsPeriods(ch)).map((p) => p.parts))
  const [crossing] = await rows<{ n: string }>(
    ch,
    `SELECT count() AS n FROM settlement_video_lines WHERE day = {day:Date} AND run_id = {run:UInt64}
     AND arrayExists(f -> views_before < f AND views_after > f, {floors:Array(UInt64)})`,
    { day, run: outcome.run_id, floors: c.floors.slice(1) },
  )
  const sameAmounts =
    Number(naive!.video_revenue_krw) === outcome.video_revenue_krw && Number(naive!.ad_revenue_krw) === outcome.ad_revenue_krw && Number(naive!.views) === outcome.views

  if (peer) peerResult = await runPeer(ch, { day, bounds, card: c, chJobSeconds: timings['nightly job (settle)']!, chTotals: outcome, smoke })

  const jobS = timings['nightly job (settle)']!
  figures = {
    raw_events: Number(counts!.raw),
    videos_with_events: Number(counts!.vids),
    video_stats_per_day_rows: Number(counts!.day_rows),
    generate_seconds: +timings.generate!.toFixed(2),
    generate_rows_per_second: Math.round(events / timings.generate!),
    merges_after_generation_seconds: mergesWait === null ? null : +timings['merges after generation']!.toFixed(2),
    merges_still_running_at_job: mergesWait === null ? null : mergesWait.running,
    active_parts_after_generation: partsAfterGeneration,
    active_parts_before_job: partsBeforeJob,
    job_seconds: +jobS.toFixed(2),
    statement_rows: statementRows,
    video_stats_rows_at_job: Number(dayRows!.n),
    job_ab: jobAbRuns,
    quiet_period_merges_seconds: +timings['merges of the quiet periods']!.toFixed(2),
    quiet_period_merges: quiet,
    stats_parts_per_period_after: partsPerPeriodAfter,
    naive_seconds: +timings['naive (from raw events)']!.toFixed(2),
    full_scan_seconds: +timings['full scan of raw_events (floor)']!.toFixed(2),
    naive_over_job: +(timings['naive (from raw events)']! / jobS).toFixed(2),
    job_over_full_scan: +(jobS / timings['full scan of raw_events (floor)']!).toFixed(2),
    video_lines: outcome.video_lines,
    checksum: outcome.checksum,
    ad_lines: outcome.ad_lines,
    views: outcome.views,
    video_revenue_krw: outcome.video_revenue_krw,
    ad_revenue_krw: outcome.ad_revenue_krw,
    videos_crossing_a_tier: Number(crossing!.n),
    naive_matches_job: sameAmounts,
    naive: Object.fromEntries(Object.entries(naive!).map(([k, v]) => [k, Number(v)])),
    peer: peerResult,
    load_average_before_generation: loadBefore,
    load_average_after: loadNow(),
  }
  await services.close()
} finally {
  await ch.close()
  await redis.stop()
}

const f = figures as Record<string, number | boolean | string>
function partsOf(fig: Record<string, unknown>, table: string): number | string {
  return (fig.active_parts_before_job as Record<string, number>)[table] ?? '?'
}
const rowsOut: [string, string | number][] = [
  ['raw events / videos with events', `${fmt(f.raw_events as number)} / ${fmt(f.videos_with_events as number)}`],
  ['generation (INSERT … SELECT through 7 views), s', f.generate_seconds as number],
  ['rows/s through raw_events and its views', f.generate_rows_per_second as number],
  [
    'merges after generation, s (active parts of raw_events / video_stats_per_day before the job)',
    `${f.merges_after_generation_seconds ?? 'not waited (--no-merge-wait)'} (${partsOf(f, 'raw_events')} / ${partsOf(f, 'video_stats_per_day')})`,
  ],
  [`nightly job (settle) for the day, s (lines in statements of ${fmt(statementRows)} of the day's ${fmt(f.video_stats_rows_at_job as number)} rows)`, f.job_seconds as number],
  ['naive settlement from raw events, s', `${f.naive_seconds} (${f.naive_over_job}x the job)`],
  ['full scan of raw_events (floor), s', `${f.full_scan_seconds} (job = ${f.job_over_full_scan}x the scan)`],
  [
    "merges of the quiet periods, s (the engine's own an hour after a period's last insert; not part of the job)",
    `${f.quiet_period_merges_seconds} (${(f.quiet_period_merges as unknown as { table: string; partition: string; parts: number }[]).map((m) => `${m.partition} of ${m.table.replace('video_stats_per_', '')}: ${m.parts} parts`).join(', ') || 'none'})`,
  ],
  ['video lines / ad lines', `${fmt(f.video_lines as number)} / ${fmt(f.ad_lines as number)}`],
  ['views / video KRW / ad KRW', `${fmt(f.views as number)} / ${fmt(f.video_revenue_krw as number)} / ${fmt(f.ad_revenue_krw as number)}`],
  ['videos crossing a tier on the day', f.videos_crossing_a_tier as number],
  ['naive amounts equal the job', String(f.naive_matches_job)],
]
const ab = f.job_ab as unknown as { statement_rows: number; seconds: number }[]
if (ab.length > 0)
  rowsOut.push([
    `the day settled again in turns, s: one statement / statements of ${fmt(statementRows)} rows`,
    ab.filter((r) => r.statement_rows !== statementRows).map((r) => r.seconds).join(' ') + ' / ' + ab.filter((r) => r.statement_rows === statementRows).map((r) => r.seconds).join(' '),
  ])
if (peerResult)
  rowsOut.push(
    ['MariaDB: load of the same events, s', peerResult.load_seconds],
    ['MariaDB: settlement (GROUP BY + tiers), s', `${peerResult.settle_seconds} (${peerResult.peer_over_job}x the nightly job)`],
    ['MariaDB amounts equal the job', String(peerResult.same_amounts)],
  )
rowsOut.push(['load average before / after', `${f.load_average_before_generation} / ${f.load_average_after}`])
printTable(`bench:settle — ${fmt(events)} events, ${fmt(videos)} videos${smoke ? ' (smoke)' : ''}`, rowsOut)
const name = peer ? 'settle-peer' : 'settle'
const file = writeResult(
  name,
  {
    command: `npm run bench:settle -- ${process.argv.slice(2).join(' ')}`.trim(),
    settings: { events, videos, creators, day, history_videos: history, zipf_s: 1, data_dir: dataDir, statement_rows: statementRows, job_ab_pairs: jobAb, smoke },
    figures,
  },
  flags.get('out'),
)
console.log(`\nwritten ${file}`)

/** Active parts per table of the database: how much merging the engine has left to do. */
async function activeParts(ch: ClickHouseClient): Promise<Record<string, number>> {
  const parts = await rows<{ table: string; n: string }>(
    ch,
    'SELECT table, count() AS n FROM system.parts WHERE active AND database = currentDatabase() GROUP BY table ORDER BY table',
  )
  return Object.fromEntries(parts.map((p) => [p.table, Number(p.n)]))
}

/** Each partition (period) of the stats tables with its count of active parts. */
async function statsPeriods(ch: ClickHouseClient): Promise<{ table: string; partition: string; id: string; parts: number }[]> {
  const periods = await rows<{ table: string; partition: string; id: string; parts: string }>(
    ch,
    `SELECT table, partition, partition_id AS id, count() AS parts FROM system.parts
     WHERE database = currentDatabase() AND active AND table IN {tables:Array(String)}
     GROUP BY table, partition, partition_id ORDER BY table, partition`,
    { tables: STATS_TABLES },
  )
  return periods.map((p) => ({ ...p, parts: Number(p.parts) }))
}

/**
 * Merges each partition of the stats tables that is in more than one part into one, as the
 * engine does once the partition has taken no insert for min_age_to_force_merge_seconds.
 */
async function mergeQuietPeriods(ch: ClickHouseClient): Promise<{ table: string; partition: string; parts: number }[]> {
  const spread = (await statsPeriods(ch)).filter((p) => p.parts > 1)
  for (const p of spread) {
    if (!STATS_TABLES.includes(p.table)) throw new Error(`not a stats table: ${p.table}`)
    await ch.command({ query: `OPTIMIZE TABLE ${p.table} PARTITION ID {id:String} FINAL`, query_params: { id: p.id } })
  }
  return spread.map((p) => ({ table: p.table, partition: p.partition, parts: p.parts }))
}
/** Waits until no merge has run for `quietSeconds` (at most `maxSeconds`); `running` is what still ran when it gave up. */
async function waitForMerges(ch: ClickHouseClient, quietSeconds = 5, maxSeconds = 1_200): Promise<{ running: number }> {
  const t0 = performance.now()
  let quietSince = performance.now()
  for (;;) {
    const [m] = await rows<{ n: string }>(ch, 'SELECT count() AS n FROM system.merges')
    const running = Number(m!.n)
    if (running > 0) quietSince = performance.now()
    else if (performance.now() - quietSince >= quietSeconds * 1000) return { running: 0 }
    if (performance.now() - t0 >= maxSeconds * 1000) return { running }
    await new Promise((r) => setTimeout(r, 500))
  }
}
