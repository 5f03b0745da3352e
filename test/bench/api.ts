/**
 * bench:api — latency and throughput of the settlement, top-5 and stats endpoints at
 * 32 concurrent clients, on the all-in-one server (bun lib/main.ts) over the data
 * folder of bench:settle (data/bench). Without that folder a smaller day is generated
 * first (bench:settle with --events, default 5M).
 *
 *   npm run bench:api -- [--data-dir data/bench] [--clients 32] [--seconds 20] [--events 5000000] [--smoke] [--out file.json]
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { freePort } from '../harness/engines.ts'
import { startServerProcess } from '../harness/process.ts'
import { BUN, loadNow, num, parseFlags, percentile, printTable, procCpuSeconds, procStatusKb, ROOT, runJsonChild, sleep, writeResult } from './lib.ts'
import { BENCH_CREATOR_SUBJECT } from './settle-data.ts'

const flags = parseFlags(process.argv.slice(2))
const smoke = flags.has('smoke')
const clients = num(flags, 'clients', 32)
const seconds = num(flags, 'seconds', smoke ? 1 : 20)
const dataDir = resolve(ROOT, flags.get('data-dir') ?? (smoke ? 'data/bench-smoke' : 'data/bench'))
const ADMIN = 'bench-admin@example.com'

if (!existsSync(join(dataDir, 'clickhouse'))) {
  const events = num(flags, 'events', smoke ? 200_000 : 5_000_000)
  console.error(`[bench:api] no settle data in ${dataDir}: generating a day of ${events} events (bench:settle)`)
  const { spawnSync } = await import('node:child_process')
  const r = spawnSync(BUN, ['test/bench/settle.ts', '--events', String(events), '--data-dir', dataDir, '--out', join(dataDir, 'settle.json'), ...(smoke ? ['--smoke'] : [])], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  if (r.status !== 0) throw new Error('generating the data failed')
}
type Prepared = { day: string; active_videos: number; creator_videos: string[]; top_videos: string[] }
const prep = await runJsonChild<Prepared>(BUN, ['test/bench/api-prepare.ts', dataDir])

const port = await freePort()
const server = await startServerProcess({
  cmd: BUN,
  args: ['lib/main.ts'],
  env: { ...process.env, REDIS_URL: undefined, CLICKHOUSE_URL: undefined, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ADMIN_EMAILS: ADMIN, NODE_ENV: 'development' },
  port,
})
const pid = server.proc.pid!
const url = server.url

type Result = { name: string; path: string; alone_ms: number; requests: number; errors: Record<string, number>; rps: number; p50: number; p95: number; p99: number; max: number }
const results: Result[] = []
let idleWaitSeconds = 0
try {
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
  const from30 = new Date(Date.parse(`${day}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10)
  const pick = <T>(xs: T[], i: number) => xs[i % xs.length]!
  const endpoints: { name: string; token: string; path: (i: number) => string }[] = [
    { name: 'settlement totals (creator, days of the month)', token: creator, path: () => `/v1/me/settlements?grain=day&from=${monthStart}&to=${day}` },
    { name: 'settlement per video (creator, the day)', token: creator, path: () => `/v1/me/settlements/videos?grain=day&from=${day}&to=${day}` },
    { name: 'top-5 of the creator (day)', token: creator, path: () => `/v1/me/top?metric=views&grain=day&date=${day}&limit=5` },
    { name: 'top-5 platform-wide (admin, day)', token: admin, path: () => `/v1/top?metric=views&grain=day&date=${day}&limit=5` },
    { name: 'stats of one video (creator, 30 days)', token: creator, path: (i) => `/v1/videos/${pick(prep.creator_videos, i)}/stats?grain=day&from=${from30}&to=${day}` },
    { name: 'stats of one video (admin, top videos, 30 days)', token: admin, path: (i) => `/v1/videos/${pick(prep.top_videos, i)}/stats?grain=day&from=${from30}&to=${day}` },
  ]

  for (const e of endpoints) {
    // Requests of a slow endpoint may still run in the engine after their clients gave up.
    await waitIdle()
    // One request first, to see that it answers and to warm caches the way a running service has them.
    const f0 = performance.now()
    const first = await fetch(`${url}${e.path(0)}`, { headers: { authorization: `Bearer ${e.token}` } })
    if (first.status !== 200) throw new Error(`${e.name}: ${first.status} ${await first.text()}`)
    await first.arrayBuffer()
    const alone = performance.now() - f0
    const lat: number[] = []
    const errors: Record<string, number> = {}
    let n = 0
    const t0 = performance.now()
    const end = t0 + seconds * 1000
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < end) {
          const i = n++
          const s = performance.now()
          try {
            const res = await fetch(`${url}${e.path(i)}`, { headers: { authorization: `Bearer ${e.token}` } })
            await res.arrayBuffer()
            if (res.status === 200) lat.push(performance.now() - s)
            else errors[res.status] = (errors[res.status] ?? 0) + 1
          } catch (err) {
            // Bun.serve closes a connection idle for 10 s: a request slower than that ends here.
            const key = err instanceof Error && 'code' in err ? String(err.code) : 'network'
            errors[key] = (errors[key] ?? 0) + 1
          }
        }
      }),
    )
    const elapsed = (performance.now() - t0) / 1000
    const sorted = Float64Array.from(lat).sort()
    const r = (x: number) => +x.toFixed(1)
    results.push({ name: e.name, path: e.path(0), alone_ms: r(alone), requests: n, errors, rps: +(lat.length / elapsed).toFixed(1), p50: r(percentile(sorted, 50)), p95: r(percentile(sorted, 95)), p99: r(percentile(sorted, 99)), max: r(sorted.at(-1) ?? NaN) })
    console.error(`[bench:api] ${e.name}: ${results.at(-1)!.rps} req/s, p99 ${results.at(-1)!.p99} ms (load ${loadNow()})`)
  }
} finally {
  const rss = procStatusKb(pid, 'VmHWM') ?? 0
  server.kill('SIGTERM')
  await server.exited
  await server.groupGone()
  const w = Math.max(...results.map((r) => r.name.length), 10)
  console.log(`\nbench:api — ${clients} clients, ${seconds} s per endpoint, ${prep.active_videos.toLocaleString('en-US')} active videos on ${prep.day}${smoke ? ' (smoke)' : ''}`)
  console.log(`${'endpoint'.padEnd(w)}  ${'alone ms'.padStart(8)}  ${'req/s'.padStart(8)}  ${'p50 ms'.padStart(8)}  ${'p95 ms'.padStart(8)}  ${'p99 ms'.padStart(8)}  ${'max ms'.padStart(8)}  errors`)
  for (const r of results)
    console.log(`${r.name.padEnd(w)}  ${String(r.alone_ms).padStart(8)}  ${String(r.rps).padStart(8)}  ${String(r.p50).padStart(8)}  ${String(r.p95).padStart(8)}  ${String(r.p99).padStart(8)}  ${String(r.max).padStart(8)}  ${JSON.stringify(r.errors)}`)
  printTable('server', [
    ['peak RSS (MiB)', Math.round(rss / 1024)],
    ['waited for the scheduler to go idle (s)', +idleWaitSeconds.toFixed(1)],
    ['load average after', loadNow()],
  ])
  if (results.length > 0) {
    const file = writeResult(
      'api',
      {
        command: `npm run bench:api -- ${process.argv.slice(2).join(' ')}`.trim(),
        settings: { clients, seconds_per_endpoint: seconds, data_dir: dataDir, day: prep.day, active_videos: prep.active_videos, creator_videos: prep.creator_videos.length, smoke },
        figures: { endpoints: results, server_peak_rss_mib: Math.round(rss / 1024), idle_wait_seconds: +idleWaitSeconds.toFixed(1), load_average_after: loadNow() },
      },
      flags.get('out'),
    )
    console.log(`\nwritten ${file}`)
  }
}
