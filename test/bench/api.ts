/**
 * bench:api — latency and throughput of the settlement, top-5 and stats endpoints at
 * 32 concurrent clients, on the all-in-one server (bun lib/main.ts) over the data
 * folder of bench:settle (data/bench). Without that folder a smaller day is generated
 * first (bench:settle with --events, default 5M).
 *
 * Cached answers are measured apart from queried ones. Per endpoint:
 * - cold: the caches are emptied (the aggregates generation and the settlement version
 *   bumped in the server's Redis, as a repair and a settlement run do, the latter with the
 *   visible runs published), then one request
 *   alone, then --cold-rounds bursts of one request per client at once, each burst after
 *   emptying the caches again: what a request costs when its answer is not cached
 *   (after --cold-warmup-rounds such bursts that are not counted, for the JIT);
 * - warm: the clients in a closed loop for --seconds over the same paths, each response
 *   counted by its `Cache-Status` header (hit, partial, miss, bypass), with the p99 of
 *   the responses that were not plain hits shown on its own. Meanwhile a load is marked
 *   in the server's Redis every --load-every-ms (500, the edge's LOAD_INTERVAL_MS; 0:
 *   none), as the edge does under live ingest: answers over open days are reused only
 *   between two loads.
 *
 * With --day (passed to bench:settle when the data folder is generated) the day can be
 * one already closed, to measure what a range of closed days costs; --only runs the
 * endpoints whose name holds the given text.
 *
 * The warm loop's clients are fetch calls from this process; with --generator wrk they are wrk's (Debian's package,
 * installed when missing; test/bench/api-wrk.lua times each answer and reads its Cache-Status).
 *
 *   With --live-events N, players send about N events a second to the server's edge during
 *   each warm loop (bench:ingest's generator, paced: one batch of 10-50 events every
 *   1.5-4.5 s per player, Zipf popularity over the day's videos), so that loads land as
 *   under live ingest and the edge marks them itself; the stats endpoints then ask up to
 *   today, whose rows those loads add to. With --settling the server settles the day again
 *   during each warm loop, as its nightly job does (api-settling.ts; each run adds its lines).
 *
 *   npm run bench:api -- [--data-dir data/bench] [--clients 32] [--generator bun|wrk] [--load-every-ms 500] [--live-events 0] [--settling] [--seconds 20] [--cold-rounds 10] [--cold-warmup-rounds 3] [--events 5000000] [--day YYYY-MM-DD] [--only stats] [--profile DIR] [--server-log FILE] [--smoke] [--out file.json]
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { freePort, tempDir } from '../harness/engines.ts'
import { startServerProcess } from '../harness/process.ts'
import { addCounts, answerViewers, BUN, cacheOutcome, childPids, ensureWrk, loadNow, processName, threadCpuSeconds, num, parseFlags, percentile, printTable, procCpuSeconds, procStatusKb, ROOT, runJsonChild, sleep, slowStatements, writeResult } from './lib.ts'
import { startLivePlayers, type LivePlayersResult } from './api-live.ts'
import { runWrk } from './api-wrk.ts'
import { startSettling, type SettlingResult } from './api-settling.ts'
import { BENCH_CREATOR_SUBJECT, returningDevice } from './settle-data.ts'
import { loadPlaybackKeys } from '../../ingest/tokens/keys.ts'
import { bumpAggregatesGeneration, markAggregatesLoad } from '../../analytics/cache/aggregate-cache.ts'
import { lastClosedDay } from '../../analytics/cache/closed-days.ts'
import { bumpSettlementVersion, publishedVisibleRuns, settlementVersion } from '../../jobs/settlement/version.ts'
import { loadSettings } from '../../lib/config.ts'
import { createRedis, waitForRedis } from '../../lib/redis.ts'

const flags = parseFlags(process.argv.slice(2))
const smoke = flags.has('smoke')
const clients = num(flags, 'clients', 32)
const seconds = num(flags, 'seconds', smoke ? 1 : 20)
const coldRounds = num(flags, 'cold-rounds', smoke ? 2 : 10)
// Cold bursts run first and not counted: the first hundred requests of an endpoint on a fresh server run while Bun's
// JIT compiles its code on the second core (the third burst was 2-3x slower than the rest in every run of 2 December).
const coldWarmupRounds = num(flags, 'cold-warmup-rounds', smoke ? 0 : 3)
// A load marked in the server's Redis this often during the warm loop, as the edge does after each load under live
// ingest (LOAD_INTERVAL_MS, 500 ms by default): answers over open days are reused only between two loads. 0: data at rest.
const liveEvents = num(flags, 'live-events', 0)
const loadEveryMs = liveEvents > 0 ? 0 : num(flags, 'load-every-ms', 500)
const settling = flags.has('settling')
// The warm loop's clients: `bun`, fetch from this process (the default), or `wrk` (Debian's package, in C, with
// test/bench/api-wrk.lua). In alternation on 2 December the two gave the same figures within the noise, and wrk
// (32 threads) took about as much CPU (results/api-generators.json), so the default stays the one past figures used.
const generator = flags.get('generator') ?? 'bun'
if (generator !== 'wrk' && generator !== 'bun') throw new Error(`--generator must be wrk or bun, got ${generator}`)
if (generator === 'wrk') ensureWrk()
const dataDir = resolve(ROOT, flags.get('data-dir') ?? (smoke ? 'data/bench-smoke' : 'data/bench'))
const ADMIN = 'bench-admin@example.com'

if (!existsSync(join(dataDir, 'clickhouse'))) {
  const events = num(flags, 'events', smoke ? 200_000 : 5_000_000)
  console.error(`[bench:api] no settle data in ${dataDir}: generating a day of ${events} events (bench:settle)`)
  const { spawnSync } = await import('node:child_process')
  const day = flags.get('day')
  const r = spawnSync(BUN, ['test/bench/settle.ts', '--events', String(events), '--data-dir', dataDir, '--out', join(dataDir, 'settle.json'), ...(day ? ['--day', day] : []), ...(smoke ? ['--smoke'] : [])], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  if (r.status !== 0) throw new Error('generating the data failed')
}
type Prepared = { day: string; active_videos: number; creator_videos: string[]; top_videos: string[]; registered: number; settings: { videos: number; creators: number; creator0: string } }
const prep = await runJsonChild<Prepared>(BUN, ['test/bench/api-prepare.ts', dataDir])

const port = await freePort()
const serverSettings = loadSettings({ ...process.env, DATA_DIR: dataDir })
// The live players' tokens are signed with the key the server reads from DATA_DIR/keys.
if (liveEvents > 0) await loadPlaybackKeys(serverSettings)
// --profile DIR: the server writes a CPU profile (.cpuprofile and markdown) there when it stops.
const profileDir = flags.get('profile')
const server = await startServerProcess({
  cmd: BUN,
  args: [...(profileDir ? ['--cpu-prof', '--cpu-prof-md', `--cpu-prof-dir=${resolve(profileDir)}`] : []), 'lib/main.ts'],
  env: {
    ...process.env,
    REDIS_URL: undefined,
    CLICKHOUSE_URL: undefined,
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ADMIN_EMAILS: ADMIN,
    NODE_ENV: 'development',
    // The live players share 50,000 addresses, far more of them per address than real players.
    RATE_LIMIT_IP_PER_SECOND: '100000',
    RATE_LIMIT_IP_BURST: '200000',
    // Every session start comes from this one address.
    PLAY_RATE_LIMIT_PER_MINUTE: '1000000',
  },
  port,
  timeoutMs: 900_000, // a migration may rebuild tables of the day at start (0060 and 0062 on a folder made before them)
})
const pid = server.proc.pid!
const redisPid = childPids(pid).find((p) => processName(p).startsWith('redis'))
const redisCpu = () => (redisPid ? (procCpuSeconds(redisPid) ?? 0) : 0)
const url = server.url
/** The server's count of keys of open periods by how the kept rows answered them. */
const keptRows = async (): Promise<Record<string, number>> =>
  Object.fromEntries([...(await (await fetch(`${url}/metrics`)).text()).matchAll(/^cs_stats_open_rows_answers_total\{outcome="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]))

type Latencies = { requests: number; p50: number; p95: number; p99: number; max: number }
type Result = {
  name: string
  path: string
  /** The first request after the caches were emptied, alone. */
  cold_alone_ms: number
  /** Bursts of one request per client at once, each after emptying the caches. */
  cold: Latencies & { outcomes: Record<string, number>; rounds_max_ms: number[]; warmup_rounds_max_ms: number[]; rounds_first_path: number[]; rounds_viewers: number[] }
  /** With --live-events: what the live players' batches got while the warm loop ran. */
  live?: LivePlayersResult
  /** With --settling: the run of the settlement job that overlapped the warm loop. */
  settling?: SettlingResult
  /** Closed loop over the same paths with the caches as the requests left them. */
  warm: Latencies & { rps: number; outcomes: Record<string, number>; hit_share: number; not_hit: Latencies; loads_marked: number; open_rows: Record<string, number>; cpu_cores: { server: number; server_by_thread: Record<string, number>; redis: number; generator: number } }
  errors: Record<string, number>
}
const results: Result[] = []
let idleWaitSeconds = 0
/** The last day the stats endpoints ask for (today under --live-events). */
let statsToDay = ''
// The server's private redis-server (REDIS_URL unset): emptying the caches is bumping what their keys include.
const redis = createRedis({ path: join(dataDir, 'redis', 'redis.sock') })
redis.on('error', () => {})
// A settlement run publishes the visible runs with its bump: as one that changed none, those the
// server kept at the version before (none before the first cold burst, whose reads keep them).
const emptyCaches = async () => {
  await bumpAggregatesGeneration(redis)
  const version = await settlementVersion(redis)
  await bumpSettlementVersion(redis, version === null ? undefined : await publishedVisibleRuns(redis, version))
}
const lastClosed = lastClosedDay(serverSettings, new Date())
const r1 = (x: number) => +x.toFixed(1)
const latencies = (xs: number[]): Latencies => {
  const sorted = Float64Array.from(xs).sort()
  return { requests: xs.length, p50: r1(percentile(sorted, 50)), p95: r1(percentile(sorted, 95)), p99: r1(percentile(sorted, 99)), max: r1(sorted.at(-1) ?? NaN) }
}
const wrkDir = tempDir('cs-bench-api-wrk-')
try {
  await waitForRedis(redis)
  // The day was written by bench:settle's generator, which stands in for the edge's loads: mark one, as the edge would.
  await markAggregatesLoad(redis)
  // The server's scheduler catches up due settlement days at start: measure once it is idle.
  const waitIdle = async (): Promise<number> => {
    const idleFrom = performance.now()
    for (let quiet = 0; quiet < 2 && performance.now() - idleFrom < 600_000; ) {
      const c0 = procCpuSeconds(pid) ?? 0
      await sleep(500)
      quiet = (procCpuSeconds(pid) ?? 0) - c0 < 0.03 ? quiet + 1 : 0
    }
    return (performance.now() - idleFrom) / 1000
  }
  idleWaitSeconds = await waitIdle()

  const login = async (subject: string, body: Record<string, unknown>, creator: boolean): Promise<string> => {
    const res = await fetch(`${url}/v1/auth/dev-login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ subject, ...body }) })
    if (res.status !== 200) throw new Error(`dev-login: ${res.status} ${await res.text()}`)
    let token = ((await res.json()) as { access_token: string }).access_token
    if (creator) {
      const r = await fetch(`${url}/v1/me/creator`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
      if (r.status !== 200) throw new Error(`becoming creator: ${r.status} ${await r.text()}`)
      token = ((await r.json()) as { access_token: string }).access_token
    }
    return token
  }
  const creator = await login(BENCH_CREATOR_SUBJECT, {}, true)
  const admin = await login('bench-admin', { email: ADMIN }, false)

  const day = prep.day
  const monthStart = `${day.slice(0, 8)}01`
  // Under live ingest the stats endpoints ask up to today, the day the live loads add to.
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: serverSettings.SETTLEMENT_TZ, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date())
  const statsTo = liveEvents > 0 ? today : day
  statsToDay = statsTo
  const from30 = new Date(Date.parse(`${statsTo}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10)
  const pick = <T>(xs: T[], i: number) => xs[i % xs.length]!
  /** `distinct`: how many different paths path(i) gives (it repeats after that); `method` and `headers` for a POST (no token: anonymous). */
  const endpoints: { name: string; token: string; path: (i: number) => string; distinct: number; method?: 'POST'; headers?: (i: number) => Record<string, string> }[] = [
    { name: 'settlement totals (creator, days of the month)', token: creator, path: () => `/v1/me/settlements?grain=day&from=${monthStart}&to=${day}`, distinct: 1 },
    { name: 'settlement per video (creator, the day)', token: creator, path: () => `/v1/me/settlements/videos?grain=day&from=${day}&to=${day}`, distinct: 1 },
    { name: 'top-5 of the creator (day)', token: creator, path: () => `/v1/me/top?metric=views&grain=day&date=${day}&limit=5`, distinct: 1 },
    { name: 'top-5 platform-wide (admin, day)', token: admin, path: () => `/v1/top?metric=views&grain=day&date=${day}&limit=5`, distinct: 1 },
    { name: 'stats of one video (creator, 30 days)', token: creator, path: (i) => `/v1/videos/${pick(prep.creator_videos, i)}/stats?grain=day&from=${from30}&to=${statsTo}`, distinct: prep.creator_videos.length },
    { name: 'stats of one video (admin, top videos, 30 days)', token: admin, path: (i) => `/v1/videos/${pick(prep.top_videos, i)}/stats?grain=day&from=${from30}&to=${statsTo}`, distinct: prep.top_videos.length },
    // A returning anonymous viewer (its device id) starting a session of a top video: the video, its served ads and the
    // viewer's resume position read (half of them have one stored: returningDevice), a playback token signed. Never cached.
    ...(generator === 'wrk'
      ? []
      : [{ name: 'session start (anonymous, top videos)', token: '', method: 'POST' as const, path: (i: number) => `/v1/videos/${pick(prep.top_videos, i)}/play`, headers: (i: number) => ({ 'x-device-id': returningDevice(i) }), distinct: prep.top_videos.length }]),
  ]

  const only = flags.get('only')
  for (const e of endpoints.filter((x) => only === undefined || x.name.includes(only))) {
    // Requests of a slow endpoint may still run in the engine after their clients gave up.
    await waitIdle()
    const errors: Record<string, number> = {}
    let n = 0
    /** One request: its latency and what the cache did, or nothing when it failed (counted in `errors`). */
    /** With `viewers`, the answer's unique viewers are added to `viewers.n` (cold bursts only: parsing costs the generator). */
    const request = (i: number): RequestInit => ({ method: e.method ?? 'GET', headers: { ...(e.token ? { authorization: `Bearer ${e.token}` } : {}), ...e.headers?.(i) } })
    const call = async (i: number, viewers?: { n: number }): Promise<{ ms: number; outcome: string } | undefined> => {
      const s = performance.now()
      try {
        const res = await fetch(`${url}${e.path(i)}`, request(i))
        const body = await res.arrayBuffer()
        const ms = performance.now() - s
        if (viewers) viewers.n += answerViewers(body)
        if (res.ok) return { ms, outcome: cacheOutcome(res.headers.get('cache-status')) }
        errors[res.status] = (errors[res.status] ?? 0) + 1
      } catch (err) {
        // Bun.serve closes a connection idle for 10 s: a request slower than that ends here.
        const key = err instanceof Error && 'code' in err ? String(err.code) : 'network'
        errors[key] = (errors[key] ?? 0) + 1
      }
      return undefined
    }
    const samples = () => {
      const all: number[] = []
      const notHit: number[] = []
      const outcomes: Record<string, number> = {}
      return {
        all,
        notHit,
        outcomes,
        add(r: { ms: number; outcome: string } | undefined) {
          if (!r) return
          all.push(r.ms)
          if (r.outcome !== 'hit') notHit.push(r.ms)
          outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1
        },
      }
    }

    // Cold: one request alone (it also checks that the endpoint answers), then bursts.
    await emptyCaches()
    const f0 = performance.now()
    const first = await fetch(`${url}${e.path(n)}`, request(n++))
    if (!first.ok) throw new Error(`${e.name}: ${first.status} ${await first.text()}`)
    await first.arrayBuffer()
    const alone = performance.now() - f0
    const cold = samples()
    const roundsMax: number[] = []
    const warmupMax: number[] = []
    // Each burst's first path index and the unique viewers its answers count (the top videos' list is in order of views).
    const rounds: { first: number; viewers: number }[] = []
    for (let round = 0; round < coldWarmupRounds + coldRounds; round++) {
      await emptyCaches()
      const viewers = { n: 0 }
      rounds.push({ first: n, viewers: 0 })
      const burst = await Promise.all(Array.from({ length: clients }, () => call(n++, viewers)))
      rounds.at(-1)!.viewers = viewers.n
      const slowest = r1(Math.max(...burst.map((r) => r?.ms ?? 0)))
      if (round < coldWarmupRounds) {
        warmupMax.push(slowest)
        continue
      }
      roundsMax.push(slowest)
      for (const r of burst) cold.add(r)
    }

    // Live players for the warm loop, started 3 s before it.
    const live =
      liveEvents > 0
        ? await startLivePlayers({ url, dataDir, issuer: serverSettings.PLAYBACK_TOKEN_ISSUER, eventsPerSecond: liveEvents, seconds, generated: prep.settings, seed: 7 + results.length, workDir: wrkDir })
        : undefined

    // Warm: the closed loop, each response sorted by what the cache did.
    const job = settling ? startSettling({ url, dataDir, day: prep.day }) : undefined
    const warm = samples()
    const t0 = performance.now()
    const end = t0 + seconds * 1000
    const genCpu0 = process.cpuUsage()
    const serverCpu0 = procCpuSeconds(pid) ?? 0
    const redisCpu0 = redisCpu()
    const threads0 = threadCpuSeconds(pid)
    const kept0 = await keptRows()
    let loads = 0
    let wrkCpuSeconds = 0
    const loading = loadEveryMs > 0 ? setInterval(() => void markAggregatesLoad(redis).then(() => loads++, () => {}), loadEveryMs) : undefined
    try {
      if (generator === 'wrk') {
        const got = await runWrk({ url, clients, seconds, token: e.token, paths: Array.from({ length: e.distinct }, (_, i) => e.path(n + i)), workDir: wrkDir })
        warm.all.push(...got.all)
        warm.notHit.push(...got.notHit)
        Object.assign(warm.outcomes, got.outcomes)
        addCounts(errors, got.errors)
        wrkCpuSeconds = got.cpuSeconds
      } else {
        await Promise.all(
          Array.from({ length: clients }, async () => {
            while (performance.now() < end) warm.add(await call(n++))
          }),
        )
      }
    } finally {
      clearInterval(loading)
    }
    const elapsed = (performance.now() - t0) / 1000
    const kept = Object.fromEntries(Object.entries(await keptRows()).map(([k, v]) => [k, v - (kept0[k] ?? 0)]))
    const liveResult = await live?.done()
    const settled = await job?.done()
    const genCpu = process.cpuUsage(genCpu0)
    // Where the server's CPU went, by thread name: the JavaScript thread ('bun'), chDB's pools, Bun's own.
    const byThread = Object.fromEntries(
      [...threadCpuSeconds(pid)].map(([name, sec]) => [name, +((sec - (threads0.get(name) ?? 0)) / elapsed).toFixed(2)] as const).filter(([, c]) => c >= 0.01).sort((a, b) => b[1] - a[1]),
    )
    const cores = { server_by_thread: byThread, server: +(((procCpuSeconds(pid) ?? 0) - serverCpu0) / elapsed).toFixed(2), redis: +((redisCpu() - redisCpu0) / elapsed).toFixed(2), generator: +(((genCpu.user + genCpu.system) / 1e6 + wrkCpuSeconds) / elapsed).toFixed(2) }
    results.push({
      name: e.name,
      path: e.path(0),
      cold_alone_ms: r1(alone),
      cold: { ...latencies(cold.all), outcomes: cold.outcomes, rounds_max_ms: roundsMax, warmup_rounds_max_ms: warmupMax, rounds_first_path: rounds.map((r) => r.first), rounds_viewers: rounds.map((r) => r.viewers) },
      warm: {
        ...latencies(warm.all),
        rps: +(warm.all.length / elapsed).toFixed(1),
        outcomes: warm.outcomes,
        hit_share: +((warm.outcomes.hit ?? 0) / Math.max(1, warm.all.length)).toFixed(3),
        not_hit: latencies(warm.notHit),
        loads_marked: loads,
        cpu_cores: cores,
        // Keys of open periods answered from the kept rows as kept, advanced by new parts, or queried (the server's /metrics).
        open_rows: kept,
      },
      ...(liveResult ? { live: liveResult } : {}),
      ...(settled ? { settling: settled } : {}),
      errors,
    })
    const r = results.at(-1)!
    console.error(`[bench:api] ${e.name}: cold p99 ${r.cold.p99} ms (slowest answer of each burst: ${r.cold.rounds_max_ms.join(' ')}; of the warm-up bursts: ${r.cold.warmup_rounds_max_ms.join(' ')}; unique viewers in each burst's answers, warm-up first: ${r.cold.rounds_viewers.join(' ')}); warm ${r.warm.rps} req/s, p99 ${r.warm.p99} ms, ${Math.round(r.warm.hit_share * 100)} % hits (open rows ${JSON.stringify(r.warm.open_rows)}); cores: server ${r.warm.cpu_cores.server} (${JSON.stringify(r.warm.cpu_cores.server_by_thread)}), redis ${r.warm.cpu_cores.redis}, generator ${r.warm.cpu_cores.generator}${r.live ? `; live ${r.live.events_per_second} events/s acknowledged (p99 ${r.live.ack_p99_ms} ms, ${JSON.stringify(r.live.statuses)})` : ''}${r.settling ? `; the day settled again meanwhile in ${r.settling.ms} ms (${r.settling.outcome}, run ${r.settling.run_id})` : ''} (load ${loadNow()})`)
  }
} finally {
  rmSync(wrkDir, { recursive: true, force: true })
  redis.disconnect()
  const rss = procStatusKb(pid, 'VmHWM') ?? 0
  server.kill('SIGTERM')
  await server.exited
  await server.groupGone()
  const w = Math.max(...results.map((r) => r.name.length), 10)
  const col = (v: string | number, width = 8) => String(v).padStart(width)
  console.log(
    `\nbench:api — ${clients} clients, ${coldRounds} cold bursts and ${seconds} s warm per endpoint (${liveEvents > 0 ? `live players sending about ${liveEvents} events/s, their loads marked by the edge, stats up to ${statsToDay}` : loadEveryMs > 0 ? `a load marked every ${loadEveryMs} ms` : 'no loads'}${settling ? ', the day settled again during each warm loop' : ''}), ${prep.active_videos.toLocaleString('en-US')} active videos on ${prep.day} (last closed day ${lastClosed})${smoke ? ' (smoke)' : ''}`,
  )
  console.log(`${''.padEnd(w)}  ${'---------------- cold ----------------'}  ${'------------------------------ warm ------------------------------'}`)
  console.log(`${'endpoint'.padEnd(w)}  ${col('alone ms')}  ${col('p50 ms')}  ${col('p99 ms')}  ${col('max ms')}  ${col('req/s')}  ${col('p50 ms')}  ${col('p99 ms')}  ${col('max ms')}  ${col('hits')}  ${col('p99 not hit', 11)}  errors`)
  for (const r of results)
    console.log(
      `${r.name.padEnd(w)}  ${col(r.cold_alone_ms)}  ${col(r.cold.p50)}  ${col(r.cold.p99)}  ${col(r.cold.max)}  ${col(r.warm.rps)}  ${col(r.warm.p50)}  ${col(r.warm.p99)}  ${col(r.warm.max)}  ${col(`${Math.round(r.warm.hit_share * 100)} %`)}  ${col(r.warm.not_hit.requests > 0 ? r.warm.not_hit.p99 : '-', 11)}  ${JSON.stringify(r.errors)}`,
    )
  console.log('warm answers by Cache-Status: ' + results.map((r) => `${r.name.split(' (')[0]}: ${JSON.stringify(r.warm.outcomes)}`).join('; '))
  const slow = slowStatements(server.output())
  // --server-log FILE: the server's own output (its warnings; with SLOW_STATEMENT_MS=0 in the environment, every engine statement timed).
  if (flags.has('server-log')) writeFileSync(resolve(flags.get('server-log')!), server.output())
  printTable('server', [
    ['peak RSS (MiB)', Math.round(rss / 1024)],
    ['statements of SLOW_STATEMENT_MS (1 s) or more; the slowest', slow.length === 0 ? 0 : `${slow.length}; ${slow[0]!.ms} ms, ${slow[0]!.kind}: ${slow[0]!.statement.slice(0, 100)}`],
    ['waited for the scheduler to go idle (s)', +idleWaitSeconds.toFixed(1)],
    ['load average after', loadNow()],
  ])
  if (results.length > 0) {
    const file = writeResult(
      'api',
      {
        command: `npm run bench:api -- ${process.argv.slice(2).join(' ')}`.trim(),
        settings: { clients, generator, cold_rounds: coldRounds, cold_warmup_rounds: coldWarmupRounds, seconds_warm_per_endpoint: seconds, load_every_ms: loadEveryMs, live_events: liveEvents, settling, settlement_statement_rows: serverSettings.SETTLEMENT_STATEMENT_ROWS, stats_to: statsToDay, data_dir: dataDir, day: prep.day, last_closed_day: lastClosed, active_videos: prep.active_videos, creator_videos: prep.creator_videos.length, videos_registered: prep.registered, smoke },
        figures: { endpoints: results, server_peak_rss_mib: Math.round(rss / 1024), idle_wait_seconds: +idleWaitSeconds.toFixed(1), slow_statements: slow.slice(0, 20), load_average_after: loadNow() },
      },
      flags.get('out'),
    )
    console.log(`\nwritten ${file}`)
  }
}
