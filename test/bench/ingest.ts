/**
 * bench:ingest — the all-in-one server (bun lib/main.ts, embedded chDB, its private
 * redis-server) on a fresh data folder, driven by a separate load-generator process
 * with many concurrent playback sessions; then the acknowledged events are counted in
 * the stopped server's data folder, and the same rows are bulk-inserted straight into
 * a fresh engine from one process (the ceiling).
 *
 *   npm run bench:ingest -- [--seconds 60] [--sessions 1000] [--videos 100000]
 *     [--env FLUSH_MAX_ROWS=20000,FLUSH_INTERVAL_MS=50] [--export-rows 2000000]
 *     [--ceiling-block 100000] [--ceiling-order arrival|storage] [--ceiling-runs 3 (the median)] [--others-nice N] [--profile DIR] [--smoke] [--out file.json] [--keep]
 *     [--think-ms 0]  (pause between a player's batches; 0 = closed loop, to find saturation)
 *     [--warmup S]    (latency after the first S seconds is reported apart; default min(seconds/4, 5 + 1.5 think times))
 *     [--generator bun|wrk]  (the players: bun, the default: ingest-load.ts, a Bun process, each player on a connection of its own kept open (keep-alive.ts); wrk: wrk
 *                     with test/bench/ingest-wrk.lua, installed through apt-get when missing)
 *     [--server-log file]  (the server's stdout and stderr, written there once it has stopped: with
 *                     --env BUN_JSC_logGC=1, JavaScriptCore's log of each collection)
 *     [--server-bun PATH]  (another Bun binary for the server alone, the players' unchanged: to compare runtimes)
 *     [--stages-by-second]  (the server's metrics read each second: its requests, stages, flushes, loads and
 *                     event-loop delay in each second, beside the players' p99 and their own loop's delay)
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadSettings } from '../../lib/config.ts'
import { loadPlaybackKeys } from '../../ingest/tokens/keys.ts'
import { freePort, tempDir } from '../harness/engines.ts'
import { startServerProcess } from '../harness/process.ts'
import { measureCeiling } from './ingest-ceiling.ts'
import type { Verify } from './ingest-engine.ts'
import type { LoadConfig, LoadResult } from './ingest-load.ts'
import { watchRedis } from './ingest-redis.ts'
import { p99BySecond, stagesBySecond } from './ingest-seconds.ts'
import { flushMetrics, type ServerMetrics } from './ingest-metrics.ts'
import { BUN, childPids, coresBySecond, loadNow, num, parseFlags, percentile, printTable, procCpuSeconds, procFaultsAndSystem, procStatusKb, processName, threadCpuSeconds, runJsonChild, sleep, startJsonChild, writeResult } from './lib.ts'

const flags = parseFlags(process.argv.slice(2))
const smoke = flags.has('smoke')
const seconds = num(flags, 'seconds', smoke ? 3 : 60)
const sessions = num(flags, 'sessions', smoke ? 20 : 1000)
const videos = num(flags, 'videos', smoke ? 200 : 100_000)
const exportRows = num(flags, 'export-rows', smoke ? 10_000 : 2_000_000)
const ceilingBlock = num(flags, 'ceiling-block', 100_000)
const ceilingOrder = flags.get('ceiling-order') ?? 'arrival' // the ceiling's rows as they arrived, or as stored (ingest-engine.ts)
if (ceilingOrder !== 'arrival' && ceilingOrder !== 'storage') throw new Error(`--ceiling-order must be arrival or storage, got ${ceilingOrder}`)
// The Bun generator by default: in alternation on 2 December (30 s runs) wrk took 0.17-0.18 cores against Bun's 0.22, but the edge accepted 40-42k events/s under it against 44-45k (see test/bench/README.md).
const generator = flags.get('generator') ?? 'bun'
if (generator !== 'wrk' && generator !== 'bun') throw new Error(`--generator must be wrk or bun, got ${generator}`)
const extraEnv = Object.fromEntries(
  (flags.get('env') ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => kv.split('=') as [string, string]),
)

const dataDir = tempDir('cs-bench-ingest-')
const port = await freePort()
const serverEnv: Record<string, string | undefined> = {
  ...process.env,
  REDIS_URL: undefined, // the server runs its private redis-server under DATA_DIR
  CLICKHOUSE_URL: undefined,
  DATA_DIR: dataDir,
  PORT: String(port),
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  TRUST_PROXY: 'true',
  // Real players never come near these; the generator's players send back to back.
  RATE_LIMIT_TOKEN_PER_SECOND: '1000',
  RATE_LIMIT_TOKEN_BURST: '2000',
  RATE_LIMIT_IP_PER_SECOND: '100000',
  RATE_LIMIT_IP_BURST: '200000',
  ...extraEnv,
}
const settings = loadSettings(serverEnv)
await loadPlaybackKeys(settings) // written once under DATA_DIR/keys; the server and the generator read it
const jwksFile = join(dataDir, 'keys', 'playback-jwks.json')

console.error(`[bench:ingest] data ${dataDir}; ${sessions} sessions for ${seconds} s; load ${loadNow()}`)
// --profile DIR: the server writes a CPU profile (.cpuprofile and markdown) there when it stops.
const profileDir = flags.get('profile')
const profileArgs = profileDir ? ['--cpu-prof', '--cpu-prof-md', `--cpu-prof-dir=${profileDir}`] : []
// --bun-args '--smol': options for the server's Bun (recorded in the results' settings).
const serverBunArgs = (flags.get('bun-args') ?? '').split(' ').filter(Boolean)
// --server-bun PATH: another Bun binary for the server alone (the players keep this checkout's), to compare runtimes.
const serverBun = flags.get('server-bun') ?? BUN
const server = await startServerProcess({ cmd: serverBun, args: [...profileArgs, ...serverBunArgs, 'lib/main.ts'], env: serverEnv, port })
const serverPid = server.proc.pid!
const redisPid = childPids(serverPid).find((p) => processName(p).startsWith('redis'))
const loadBefore = loadNow()
const loadOut = join(dataDir, 'load-result.json')
const loadCfg: LoadConfig = {
  url: server.url,
  jwksFile,
  issuer: settings.PLAYBACK_TOKEN_ISSUER,
  sessions,
  seconds,
  videos,
  creators: Math.max(1, Math.floor(videos / 20)),
  zipfS: num(flags, 'zipf', 1.0),
  ips: num(flags, 'ips', smoke ? 500 : 50_000),
  selfViewShare: num(flags, 'self-view-share', 0.02),
  repeatShare: num(flags, 'repeat-share', 0.02),
  badTokenShare: num(flags, 'bad-token-share', 0.01),
  thinkMs: num(flags, 'think-ms', 0),
  seed: num(flags, 'seed', 42),
  out: loadOut,
}
// --others-nice N (a diagnostic): the players' generator and Redis at nice N, as if they ran on other
// machines and the edge had the cores to itself (HISTORY.md, twenty-seventh session).
const othersNice = flags.get('others-nice')
if (othersNice !== undefined && !/^(1?\d)$/.test(othersNice)) throw new Error(`--others-nice must be 0 to 19, got ${othersNice}`)
if (othersNice && redisPid) for (const t of readdirSync(`/proc/${redisPid}/task`)) spawnSync('renice', ['-n', othersNice, '-p', t], { stdio: 'ignore' })
/** Redis's nice value as the kernel has it (field 19 of its stat), read after the renice. */
const redisNice = redisPid ? Number(readFileSync(`/proc/${redisPid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]) : NaN
// The players sign their tokens first; the server is measured from when their clock starts.
const playerArgs = [generator === 'wrk' ? 'test/bench/ingest-load-wrk.ts' : 'test/bench/ingest-load.ts']
const players = await startJsonChild(othersNice ? 'nice' : BUN, othersNice ? ['-n', othersNice, BUN, ...playerArgs] : playerArgs, { ...process.env, BENCH_LOAD: JSON.stringify(loadCfg) })
await players.started.catch((err: unknown) => (server.kill('SIGTERM'), Promise.reject(err)))
const cpuBefore = { server: procCpuSeconds(serverPid) ?? 0, redis: redisPid ? (procCpuSeconds(redisPid) ?? 0) : 0, threads: threadCpuSeconds(serverPid), faults: procFaultsAndSystem(serverPid) }

let peakRssKb = 0
/** The server's largest RSS in each 10 s of the run (MiB): tells a plateau from growth. */
const rssByTenSeconds: number[] = []
const sampledFrom = performance.now()
/** Redis keeps the edge's state (decisions of event ids, sessions, windows); decisions expire DECISION_IDLE_MINUTES after a session's last batch, so it levels off. */
const redis = watchRedis(redisPid, join(settings.dataDir, 'redis', 'redis.sock'), sampledFrom)
const cores = coresBySecond(serverPid, redisPid, sampledFrom, 'redis')
const stages = flags.has('stages-by-second') ? stagesBySecond(server.url, sampledFrom) : undefined
const sampler = setInterval(() => {
  stages?.sample()
  const rss = procStatusKb(serverPid, 'VmRSS') ?? 0
  peakRssKb = Math.max(peakRssKb, rss)
  redis.sample()
  const slot = Math.floor((performance.now() - sampledFrom) / 10_000)
  rssByTenSeconds[slot] = Math.max(rssByTenSeconds[slot] ?? 0, Math.round(rss / 1024))
  cores.sample()
}, 250)

const warmupSeconds = num(flags, 'warmup', Math.min(seconds / 4, 5 + (loadCfg.thinkMs / 1000) * 1.5))
/** The server's metrics as the warm-up ends: its own p99s are read over the same span as the players' after it. */
let metricsAtWarmup: string | undefined
const warmupTimer = setTimeout(() => void fetch(`${server.url}/metrics`).then((r) => r.text()).then((t) => (metricsAtWarmup = t), () => {}), warmupSeconds * 1000)

let load: LoadResult
let flushes: ServerMetrics = { flushes: 0, rows: 0, mean_rows: 0, mean_seconds: 0, wal_flushes: 0, wal_mean_rows: 0, wal_mean_seconds: 0, wal_p99_seconds_at_most: NaN, stage_mean_seconds: { decide: NaN, commit: NaN, place: NaN }, place_waits: 0, server_p99_ms_at_most: { request: NaN, decide: NaN, commit: NaN }, js_heap_mib: 0, engine_tracked_mib: 0, engine_resident_mib: 0, server_side_latency: {} }
let cpuServer = 0
let cpuRedis = 0
let serverFaults = { minorFaults: 0, systemSeconds: 0 }
let serverHwmKb = 0
/** The server's RSS at the end of the load: anonymous memory (heaps, the engine's) and pages of files (code mapped from disk). */
let serverRssAtEnd = { anonymous_mib: 0, file_mib: 0 }
const serverThreads: Record<string, number> = {}
try {
  await players.result
  load = JSON.parse(readFileSync(loadOut, 'utf8')) as LoadResult
  flushes = await flushMetrics(server.url, metricsAtWarmup)
  cpuServer = (procCpuSeconds(serverPid) ?? 0) - cpuBefore.server
  cpuRedis = redisPid ? (procCpuSeconds(redisPid) ?? 0) - cpuBefore.redis : 0
  const faults = procFaultsAndSystem(serverPid)
  if (faults && cpuBefore.faults) serverFaults = { minorFaults: faults.minorFaults - cpuBefore.faults.minorFaults, systemSeconds: faults.systemSeconds - cpuBefore.faults.systemSeconds }
  serverHwmKb = procStatusKb(serverPid, 'VmHWM') ?? 0
  serverRssAtEnd = { anonymous_mib: Math.round((procStatusKb(serverPid, 'RssAnon') ?? 0) / 1024), file_mib: Math.round((procStatusKb(serverPid, 'RssFile') ?? 0) / 1024) }
  await redis.atEnd()
  // Where the server's CPU went, by thread name: the JavaScript thread, chDB's pools, Bun's own.
  for (const [name, sec] of threadCpuSeconds(serverPid)) {
    const used = sec - (cpuBefore.threads.get(name) ?? 0)
    if (used > 0) serverThreads[name] = +(used / load.seconds).toFixed(3)
  }
} finally {
  clearTimeout(warmupTimer)
  clearInterval(sampler)
  redis.stop()
  server.kill('SIGTERM')
}
const exitCode = await server.exited
await server.groupGone()
if (flags.get('server-log')) writeFileSync(flags.get('server-log')!, server.output())
const gc = gcSummary(server.output())
const loadAfter = loadNow()

const ackedFile = join(dataDir, 'acked.json')
writeFileSync(ackedFile, JSON.stringify(load.acked_per_slot))
const exportFile = join(dataDir, 'rows.tsv')
const verify = await runJsonChild<Verify>(BUN, ['test/bench/ingest-engine.ts', 'verify', dataDir, ackedFile, exportFile, String(exportRows), ceilingOrder])
const ceiling = await measureCeiling(exportFile, ceilingBlock, num(flags, 'ceiling-runs', smoke ? 1 : 3))
if (!flags.has('keep')) rmSync(dataDir, { recursive: true, force: true })

const lat = Float64Array.from(load.latencies_ms).sort()
// Steady state: from the end of the warm-up on (every player has started and the server's
// code is compiled); the whole run is reported too.
const steady = Float64Array.from(load.latencies_ms.filter((_, i) => load.sent_at_s[i]! >= warmupSeconds)).sort()
const steadyAccepted = load.accepted_per_second.slice(Math.ceil(warmupSeconds), Math.floor(load.seconds))
const acceptedPerSecond = load.accepted / load.seconds
// Rows the edge stored per second (accepted + excluded + rejected events of 200 batches, duplicates excluded).
const storedPerSecond = verify.stored_rows / load.seconds
const fullSeconds = load.accepted_per_second.slice(1, Math.floor(load.seconds))
const sortedSeconds = [...fullSeconds].sort((a, b) => a - b)
const figures = {
  accepted_events_per_second: Math.round(acceptedPerSecond),
  stored_rows_per_second: Math.round(storedPerSecond),
  /** Rows the loader put into ClickHouse while the players ran: below stored_rows_per_second, the edge's buffer took the rest (sustained only when they match). */
  loaded_rows_per_second: Number.isFinite(flushes.rows) ? Math.round(flushes.rows / load.seconds) : 0,
  accepted_per_second_min_full_second: sortedSeconds[0] ?? null,
  accepted_per_second_median_full_second: sortedSeconds.length ? percentile(sortedSeconds, 50) : null,
  /** Accepted events in each second of the run, in order (when a stall came, and how long it lasted). */
  accepted_by_second: load.accepted_per_second,
  /** Cores used in each second by the server's threads (by name, those that used 0.05 cores or more in some second) and Redis (see coresBySecond). */
  cores_by_second: cores.series(0.05),
  /** The players' p99 acknowledgement in each second they sent in (ms), and how late their own 10 ms timer fired in all (ms held). */
  ack_p99_ms_by_second: p99BySecond(load.latencies_ms, load.sent_at_s),
  generator_loop_held_ms_by_second: load.loop_held_ms_by_second ?? [],
  /** How long the server's JavaScript thread waited for a CPU in each second (ms; schedstat run_delay). */
  server_js_thread_cpu_wait_ms_by_second: cores.mainWaits(),
  ...(stages ? { server_by_second: stages.series() } : {}),
  requests_per_second: Math.round((load.statuses['200'] ?? 0) / load.seconds),
  ack_latency_ms: { p50: +percentile(lat, 50).toFixed(1), p95: +percentile(lat, 95).toFixed(1), p99: +percentile(lat, 99).toFixed(1), max: +(lat.at(-1) ?? NaN).toFixed(1) },
  /** The same after the warm-up (the first warmup_seconds), and the accepted events per second then. */
  steady_state: {
    warmup_seconds: warmupSeconds,
    accepted_events_per_second: steadyAccepted.length ? Math.round(steadyAccepted.reduce((a, b) => a + b, 0) / steadyAccepted.length) : null,
    ack_latency_ms: { p50: +percentile(steady, 50).toFixed(1), p95: +percentile(steady, 95).toFixed(1), p99: +percentile(steady, 99).toFixed(1), max: +(steady.at(-1) ?? NaN).toFixed(1) },
    /** Answers 503 from the end of the warm-up on (null: the generator does not count them by second). */
    answers_503: load.refused_per_second ? load.refused_per_second.slice(Math.ceil(warmupSeconds)).reduce((a, b) => a + b, 0) : null,
  },
  statuses: load.statuses,
  network_errors: load.network_errors,
  accepted: load.accepted,
  duplicates: load.duplicates,
  rejected_by_reason: load.rejected,
  sessions_started: load.sessions_started,
  connections_opened: load.connections_opened ?? null,
  server_peak_rss_mib: Math.round(Math.max(serverHwmKb, peakRssKb) / 1024),
  server_rss_mib_by_10s: Array.from(rssByTenSeconds, (v) => v ?? 0),
  server_rss_at_end: { ...serverRssAtEnd, js_heap_mib: flushes.js_heap_mib, engine_tracked_mib: flushes.engine_tracked_mib, engine_resident_mib: flushes.engine_resident_mib },
  ...redis.figures(load.accepted),
  server_cpu_cores: +(cpuServer / load.seconds).toFixed(2),
  /** Of the server's CPU, the share spent in the kernel (system calls, page faults). */
  server_cpu_system_share: cpuServer > 0 ? +(serverFaults.systemSeconds / cpuServer).toFixed(3) : 0,
  server_minor_faults_per_second: Math.round(serverFaults.minorFaults / load.seconds),
  server_minor_faults_per_accepted_event: load.accepted > 0 ? +(serverFaults.minorFaults / load.accepted).toFixed(3) : 0,
  redis_cpu_cores: +(cpuRedis / load.seconds).toFixed(2),
  generator_cpu_cores: +(load.cpu_seconds / load.seconds).toFixed(2),
  /** Cores used by the server's threads during the run, by thread name (threads that ended are missing). */
  server_cpu_cores_by_thread: Object.fromEntries(Object.entries(serverThreads).sort((a, b) => b[1] - a[1])),
  server_exit_code: exitCode,
  ...(gc ? { server_gc: gc } : {}),
  flushes,
  verify,
  ceiling_rows_per_second: Math.round(ceiling.rows_per_second),
  ceiling,
  edge_share_of_ceiling: +(storedPerSecond / ceiling.rows_per_second).toFixed(3),
  load_average_before: loadBefore,
  load_average_after: loadAfter,
}
const settingsUsed = {
  generator,
  seconds,
  sessions,
  videos,
  zipf_s: loadCfg.zipfS,
  ips: loadCfg.ips,
  self_view_share: loadCfg.selfViewShare,
  repeat_share: loadCfg.repeatShare,
  bad_token_share: loadCfg.badTokenShare,
  think_ms: loadCfg.thinkMs,
  batch_events: '10-50',
  export_rows: exportRows,
  ceiling_block_rows: ceilingBlock, ceiling_order: ceilingOrder, ceiling_runs: ceiling.runs_rows_per_second.length,
  others_nice: othersNice === undefined ? 0 : Number(othersNice), redis_nice: redisNice,
  server_env: Object.fromEntries(
    ['FLUSH_MAX_ROWS', 'FLUSH_INTERVAL_MS', 'LOAD_MAX_ROWS', 'LOAD_INTERVAL_MS', 'BUFFER_MAX_ROWS', 'RATE_LIMIT_TOKEN_PER_SECOND', 'RATE_LIMIT_IP_PER_SECOND', 'MAX_VIEWS_PER_IP', 'TRUST_PROXY', 'DECISION_IDLE_MINUTES'].map((k) => [k, String(settings[k as keyof typeof settings])]),
  ),
  server_bun_args: serverBunArgs.join(' '),
  // The server's Bun when --server-bun gave another than the machine's (`bun` there).
  server_bun: serverBun === BUN ? 'the checkout\'s' : `${serverBun} (${spawnSync(serverBun, ['--version'], { encoding: 'utf8' }).stdout.trim()})`,
  smoke,
}

printTable(`bench:ingest — ${sessions} sessions, ${seconds} s${smoke ? ' (smoke)' : ''}`, [
  ['accepted events/s', figures.accepted_events_per_second],
  ['stored rows/s (incl. excluded, rejected)', figures.stored_rows_per_second],
  ['rows/s loaded into ClickHouse meanwhile (less: the rest was buffered)', figures.loaded_rows_per_second],
  ['accepted/s, slowest / median full second', `${fmtN(figures.accepted_per_second_min_full_second)} / ${fmtN(figures.accepted_per_second_median_full_second)}`],
  ['200 responses/s', figures.requests_per_second],
  ['ack latency p50 / p95 / p99 / max (ms)', `${figures.ack_latency_ms.p50} / ${figures.ack_latency_ms.p95} / ${figures.ack_latency_ms.p99} / ${figures.ack_latency_ms.max}`],
  [`after the first ${warmupSeconds} s: accepted/s; ack p50 / p95 / p99 / max (ms)`, `${fmtN(figures.steady_state.accepted_events_per_second)}; ${figures.steady_state.ack_latency_ms.p50} / ${figures.steady_state.ack_latency_ms.p95} / ${figures.steady_state.ack_latency_ms.p99} / ${figures.steady_state.ack_latency_ms.max}`],
  [
    'responses by status',
    JSON.stringify(load.statuses) +
      (load.network_errors ? `, network errors ${load.network_errors}` : '') +
      (figures.steady_state.answers_503 !== null && load.statuses['503'] ? `; 503 after the first ${warmupSeconds} s: ${figures.steady_state.answers_503}` : ''),
  ],
  ['accepted / duplicates; connections the players opened', `${load.accepted} / ${load.duplicates}; ${load.connections_opened ?? 'not counted (wrk)'}`],
  ['rejected by reason', JSON.stringify(load.rejected)],
  ['answered by the server within 50 / 100 / 250 ms', ['<=50ms', '<=100ms', '<=250ms'].map((k) => `${((flushes.server_side_latency[k] ?? 0) * 100).toFixed(1)} %`).join(' / ')],
  ['server peak RSS (MiB)', figures.server_peak_rss_mib],
  [
    'server RSS at the end (MiB): anonymous (JS heap, engine tracked / resident) + files',
    `${serverRssAtEnd.anonymous_mib} (${flushes.js_heap_mib}, ${flushes.engine_tracked_mib} / ${flushes.engine_resident_mib}) + ${serverRssAtEnd.file_mib}`,
  ],
  ['server RSS, largest in each 10 s (MiB)', figures.server_rss_mib_by_10s.join(' ')],
  ['Redis peak RSS (MiB); grown per accepted event (bytes)', `${figures.redis_peak_rss_mib}; ${figures.redis_rss_bytes_per_accepted_event}`],
  ['Redis used memory, append-only file per accepted event (bytes)', `${figures.redis_used_bytes_per_accepted_event}, ${figures.redis_aof_bytes_per_accepted_event}`],
  ['Redis RSS, largest in each 10 s (MiB)', figures.redis_rss_mib_by_10s.join(' ')],
  ['Redis used_memory at 10 s, 20 s, ... (MiB)', figures.redis_used_memory_mib_by_10s.join(' ')],
  [
    'Redis keys at the end: count; sampled share by kind',
    figures.redis_keys_at_end ? `${figures.redis_keys_at_end.keys}; ${Object.entries(figures.redis_keys_at_end.sampled_share_by_kind).map(([k, v]) => `${k} ${(v * 100).toFixed(1)} %`).join(', ')}` : 'n/a',
  ],
  ['loads into ClickHouse: count / mean rows / mean s', `${flushes.flushes} / ${Math.round(flushes.mean_rows)} / ${flushes.mean_seconds.toFixed(3)}`],
  ['log flushes: count / mean rows / mean s / p99 s at most', `${flushes.wal_flushes} / ${Math.round(flushes.wal_mean_rows)} / ${flushes.wal_mean_seconds.toFixed(3)} / ${flushes.wal_p99_seconds_at_most}`],
  ['mean ms per request: deciding / waiting for its flush', `${(flushes.stage_mean_seconds.decide * 1000).toFixed(1)} / ${(flushes.stage_mean_seconds.commit * 1000).toFixed(1)}`],
  ['batches that waited for a place among those taken in at once; their mean wait (ms)', `${flushes.place_waits.toLocaleString('en-US')}; ${flushes.place_waits > 0 ? (flushes.stage_mean_seconds.place * 1000).toFixed(1) : '-'}`],
  [`server p99 after the first ${warmupSeconds} s, at most (its buckets, ms): request / deciding / waiting for its flush`, `${flushes.server_p99_ms_at_most.request} / ${flushes.server_p99_ms_at_most.decide} / ${flushes.server_p99_ms_at_most.commit}`],
  ['server: share of its CPU in the kernel; minor page faults per second, per accepted event', `${(figures.server_cpu_system_share * 100).toFixed(1)} %; ${figures.server_minor_faults_per_second.toLocaleString('en-US')}, ${figures.server_minor_faults_per_accepted_event}`],
  ['server JavaScript thread: waited for a CPU, ms per second, mean / max', `${Math.round(figures.server_js_thread_cpu_wait_ms_by_second.reduce((a, b) => a + b, 0) / Math.max(1, figures.server_js_thread_cpu_wait_ms_by_second.length))} / ${Math.max(0, ...figures.server_js_thread_cpu_wait_ms_by_second)}`],
  ['CPU cores used: server / redis / generator', `${figures.server_cpu_cores} / ${figures.redis_cpu_cores} / ${figures.generator_cpu_cores}`],
  ...(gc ? [['server GC over its life (--env BUN_JSC_logGC=1): collections eden / full; pauses; cycles', `${gc.eden} / ${gc.full}; ${(gc.pause_ms / 1000).toFixed(2)} s in ${gc.pauses}; ${(gc.cycle_ms / 1000).toFixed(2)} s`] as [string, string]] : []),
  ['server cores by thread (top 6)', Object.entries(figures.server_cpu_cores_by_thread).slice(0, 6).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')],
  ['acknowledged events', verify.acked_events],
  ['acknowledged stored exactly once', `${verify.acked_stored_ids} (lost ${verify.acked_lost}, rows stored twice ${verify.rows_stored_twice})`],
  ['aggregates equal raw table', String(verify.aggregates_match_raw)],
  [`ceiling: ${ceiling.rows} rows in blocks of ${ceiling.block_rows}, ${ceilingOrder === 'arrival' ? 'as they arrived' : 'as stored'}, rows/s (median of ${ceiling.runs_rows_per_second.join(' / ')})`, figures.ceiling_rows_per_second],
  ['edge stored rows/s as share of ceiling', `${(figures.edge_share_of_ceiling * 100).toFixed(1)} %`],
  ['load average before / after', `${loadBefore} / ${loadAfter}`],
])
const file = writeResult('ingest', { command: `npm run bench:ingest -- ${process.argv.slice(2).join(' ')}`.trim(), settings: settingsUsed, figures }, flags.get('out'))
console.log(`\nwritten ${file}`)

function fmtN(n: number | null): string {
  return n === null ? '-' : n.toLocaleString('en-US')
}
await sleep(0)

/**
 * JavaScriptCore's log of the server's collections (BUN_JSC_logGC=1), summed: each collection's
 * start line names its kind, each pause of the JavaScript thread prints `p=<ms>`, a finished
 * cycle `cycle <ms>ms END`. Undefined when the log is off.
 */
function gcSummary(output: string): { eden: number; full: number; pauses: number; pause_ms: number; cycle_ms: number } | undefined {
  const eden = output.match(/=> EdenCollection/g)?.length ?? 0
  const full = output.match(/=> FullCollection/g)?.length ?? 0
  if (eden + full === 0) return undefined
  const pauses = [...output.matchAll(/ p=([\d.]+)ms/g)].map((m) => Number(m[1]))
  const cycles = [...output.matchAll(/cycle ([\d.]+)ms END/g)].map((m) => Number(m[1]))
  const sum = (xs: number[]) => +xs.reduce((a, b) => a + b, 0).toFixed(1)
  return { eden, full, pauses: pauses.length, pause_ms: sum(pauses), cycle_ms: sum(cycles) }
}
