import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import { tempDir } from '../harness/engines.ts'
import { BUN, ROOT } from '../harness/process.ts'
import { RAW_COLUMNS } from '../../ingest/events/rows.ts'

/**
 * Each benchmark in its smoke mode (tiny sizes, a few seconds): it completes, prints
 * its table and writes figures that make sense. Never a check on speed: full runs
 * (npm run bench:*) are not part of CI.
 */
const dir = tempDir('cs-bench-smoke-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function run(script: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(BUN, [`test/bench/${script}`, '--smoke', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    p.on('exit', (code) => resolve({ code, out }))
  })
}

const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { figures: Record<string, any>; machine: Record<string, unknown>; settings: Record<string, unknown> }
const mariadbAnswers = spawnSync('mysql', ['-h', '127.0.0.1', '-u', 'root', '-e', 'SELECT 1'], { stdio: 'ignore' }).status === 0
// The alternation tools check a commit out in a git worktree: they need a git checkout.
const gitCheckout = spawnSync('git', ['rev-parse', '--verify', 'HEAD'], { cwd: ROOT, stdio: 'ignore' }).status === 0

describe('benchmarks in smoke mode', () => {
  it('bench:ingest drives the real server, stores every acknowledged event once and measures the ceiling', async () => {
    const out = join(dir, 'ingest.json')
    // With JavaScriptCore's log of collections on, the run sums the server's collections; its data folder kept for the ceiling's rows.
    const r = await run('ingest.ts', ['--out', out, '--env', 'BUN_JSC_logGC=1', '--keep', '--ceiling-runs', '2'])
    const dataDir = /\[bench:ingest\] data (\S+);/.exec(r.out)?.[1]
    if (dataDir) onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }))
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain('accepted events/s')
    const { figures: f, machine, settings } = read(out)
    // Each player on its own connection, kept open: a new one only after a failure.
    expect(f.connections_opened).toBeGreaterThanOrEqual(settings.sessions as number)
    expect(f.connections_opened).toBeLessThanOrEqual((settings.sessions as number) + f.network_errors)
    expect(f.server_gc.eden + f.server_gc.full).toBeGreaterThan(0)
    expect(f.server_gc.pause_ms).toBeGreaterThan(0)
    expect(f.server_minor_faults_per_second).toBeGreaterThan(0)
    expect(f.server_cpu_system_share).toBeGreaterThan(0)
    expect(f.server_cpu_system_share).toBeLessThanOrEqual(1)
    expect(machine.cores).toBeGreaterThan(0)
    expect(f.accepted).toBeGreaterThan(0)
    expect(f.statuses['200']).toBeGreaterThan(0)
    expect(f.verify.acked_events).toBeGreaterThan(0)
    expect(f.verify.acked_lost).toBe(0)
    expect(f.verify.rows_stored_twice).toBe(0)
    expect(f.verify.aggregates_match_raw).toBe(true)
    expect(f.ack_latency_ms.p50).toBeGreaterThan(0)
    expect(f.ack_latency_ms.p99).toBeGreaterThanOrEqual(f.ack_latency_ms.p50)
    // The server's own p99 (bucket bounds, ms) for the request and its two stages, read from its metrics.
    for (const k of ['request', 'decide', 'commit']) expect(f.flushes.server_p99_ms_at_most[k], k).toBeGreaterThan(0)
    expect(f.server_peak_rss_mib).toBeGreaterThan(0)
    expect(f.ceiling.stored).toBe(f.ceiling.rows)
    expect(f.ceiling_rows_per_second).toBeGreaterThan(0)
    // Measured twice, each in a fresh engine; of two, the slower is the one given.
    expect(settings.ceiling_runs).toBe(2)
    expect(f.ceiling.runs_rows_per_second).toHaveLength(2)
    expect(f.ceiling_rows_per_second).toBe(Math.min(...f.ceiling.runs_rows_per_second))
    // The ceiling inserts the rows in the order the edge received them (not as raw_events stores them, by video).
    expect(settings.ceiling_order).toBe('arrival')
    const receivedAt = RAW_COLUMNS.indexOf('received_at')
    const times = readFileSync(join(dataDir!, 'rows.tsv'), 'utf8').trimEnd().split('\n').map((l) => Number(l.split('\t')[receivedAt]))
    expect(times.length).toBe(f.ceiling.rows)
    expect(times.every((t, i) => t > 0 && (i === 0 || t >= times[i - 1]!))).toBe(true)
  }, 180_000)

  it('bench:ingest --generator wrk drives the same players from wrk, and every acknowledged event is stored once', async () => {
    const out = join(dir, 'ingest-wrk.json')
    // With the players and Redis at a lower priority (a diagnostic flag): Redis's threads reniced.
    const r = await run('ingest.ts', ['--generator', 'wrk', '--out', out, '--others-nice', '5'])
    expect(r.code, r.out).toBe(0)
    const { figures: f, settings } = read(out)
    expect(settings.generator).toBe('wrk')
    expect(settings.others_nice).toBe(5)
    expect(settings.redis_nice).toBe(5)
    expect(f.statuses['200']).toBeGreaterThan(0)
    // The spoiled tokens were refused, and nothing else failed.
    expect(Object.keys(f.statuses).sort()).toEqual(['200', '401'])
    expect(f.network_errors).toBe(0)
    expect(f.verify.acked_events).toBeGreaterThan(0)
    expect(f.verify.acked_events).toBe(f.verify.acked_stored_ids)
    expect(f.verify.acked_lost).toBe(0)
    expect(f.verify.rows_stored_twice).toBe(0)
    expect(f.verify.aggregates_match_raw).toBe(true)
    expect(f.generator_cpu_cores).toBeGreaterThan(0)
  }, 180_000)

  it('bench:ingest:script measures the Redis CPU of every script call, with and without the append-only file', async () => {
    const out = join(dir, 'ingest-script.json')
    const r = await run('ingest-script.ts', ['--out', out])
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain('Redis CPU per call')
    const { figures: f } = read(out)
    expect(Object.keys(f)).toEqual(['ingest, 0 events', 'ingest, 1 event', 'ingest, 30 events', 'IP bucket'])
    for (const v of Object.values(f)) {
      expect(v.aof_us_per_call).toBeGreaterThan(0)
      expect(v.no_aof_us_per_call).toBeGreaterThan(0)
    }
  }, 120_000)

  it.skipIf(spawnSync('valgrind', ['--version']).status !== 0)('bench:ingest:script --callgrind counts the instructions Redis executes per ingest call', async () => {
    const out = join(dir, 'ingest-script-callgrind.json')
    const r = await run('ingest-script.ts', ['--callgrind', '--calls', '20', '--out', out])
    expect(r.code, r.out).toBe(0)
    const { figures: f } = read(out)
    // A 30-event call is hundreds of thousands of instructions; start and stop are taken off.
    for (const v of Object.values(f) as { instructions_per_call: number }[]) expect(v.instructions_per_call).toBeGreaterThan(100_000)
    expect(Object.keys(f)).toHaveLength(2)
  }, 120_000)

  it('bench:redis-clients times the same ingest-sized EVALSHA through ioredis and Bun.RedisClient', async () => {
    const out = join(dir, 'redis-clients.json')
    const r = await run('redis-clients.ts', ['--out', out])
    expect(r.code, r.out).toBe(0)
    const { figures: f } = read(out)
    expect(f.runs.map((x: { client: string }) => x.client)).toEqual(['ioredis', 'Bun.RedisClient'])
    for (const x of f.runs) {
      expect(x.calls_per_second).toBeGreaterThan(0)
      expect(x.cpu_us_per_call).toBeGreaterThan(0)
    }
  }, 60_000)

  it('bench:settle generates a day, settles it, and the naive settlement gives the same amounts', async () => {
    const out = join(dir, 'settle.json')
    const r = await run('settle.ts', ['--data-dir', join(dir, 'data'), '--statement-rows', '2000', '--job-ab', '1', '--out', out])
    expect(r.code, r.out).toBe(0)
    const { figures: f } = read(out)
    // The lines in statements of at most 2,000, then in one and in those again: the same lines.
    expect(f.video_stats_rows_at_job).toBeGreaterThan(2_000)
    expect(f.job_ab.map((j: { statement_rows: number }) => j.statement_rows)).toEqual([1_000_000_000, 2_000])
    for (const j of f.job_ab) expect(j).toMatchObject({ seconds: expect.any(Number), checksum: f.checksum })
    expect(f.raw_events).toBe(200_000)
    expect(f.video_lines).toBeGreaterThan(0)
    expect(f.videos_crossing_a_tier).toBeGreaterThan(0)
    expect(f.naive_matches_job).toBe(true)
    expect(f.job_seconds).toBeGreaterThan(0)
    expect(f.generate_rows_per_second).toBeGreaterThan(0)
    // the job is timed once the engine has merged the generated day, as at night
    expect(f.merges_still_running_at_job).toBe(0)
    expect(f.active_parts_before_job.raw_events).toBeGreaterThan(0)
    // and leaves each period of the stats tables in one part, as the engine does once they are quiet
    expect(f.stats_parts_per_period_after).toBe(1)
    expect(f.quiet_period_merges_seconds).toBeGreaterThanOrEqual(0)
  }, 180_000)

  it('bench:api measures every endpoint over the settle data without errors', async () => {
    const out = join(dir, 'api.json')
    const r = await run('api.ts', ['--data-dir', join(dir, 'data'), '--clients', '4', '--generator', 'wrk', '--out', out])
    expect(r.code, r.out).toBe(0)
    const { figures: f, settings, machine } = read(out)
    // The warm loop's clients are wrk's here (installed through apt-get when missing).
    expect(settings.generator).toBe('wrk')
    expect(machine.wrk).toMatch(/^wrk /)
    expect(f.endpoints).toHaveLength(6)
    for (const e of f.endpoints) {
      expect(e.errors, e.name).toEqual({})
      expect(e.warm.cpu_cores.server, e.name).toBeGreaterThan(0)
      expect(e.warm.cpu_cores.generator, e.name).toBeGreaterThan(0)
      // Cold and warm are measured apart, and every answer says what the cache did.
      expect(e.cold.requests, e.name).toBe(2 * 4)
      expect(e.cold.p99, e.name).toBeGreaterThan(0)
      expect(e.warm.requests, e.name).toBeGreaterThan(0)
      expect(e.warm.p99, e.name).toBeGreaterThan(0)
      expect(e.warm.outcomes.none ?? 0, e.name).toBe(0)
    }
  }, 240_000)

  it('bench:api drives the warm loop from its own process by default, with live players and the day settled again when asked', async () => {
    const out = join(dir, 'api-bun.json')
    const r = await run('api.ts', ['--data-dir', join(dir, 'data'), '--clients', '4', '--only', 'stats of one video (creator', '--live-events', '300', '--settling', '--out', out])
    expect(r.code, r.out).toBe(0)
    const { figures: f, settings } = read(out)
    expect(settings.generator).toBe('bun')
    // The first run registered the videos; this one adds no copy of them (each copy a part the lookups read).
    expect(read(join(dir, 'api.json')).settings.videos_registered).toBeGreaterThan(0)
    expect(settings.videos_registered).toBe(0)
    expect(f.endpoints.map((e: { name: string }) => e.name)).toEqual(['stats of one video (creator, 30 days)'])
    expect(f.endpoints[0].errors).toEqual({})
    expect(f.endpoints[0].warm.requests).toBeGreaterThan(0)
    expect(f.endpoints[0].warm.outcomes.none ?? 0).toBe(0)
    // The live players' batches were all acknowledged, and the stats asked up to today, after the generated day.
    expect(Object.keys(f.endpoints[0].live.statuses)).toEqual(['200'])
    expect(f.endpoints[0].live.events_per_second).toBeGreaterThan(0)
    expect(String(settings.stats_to) > String(settings.day)).toBe(true)
    // The server settled the generated day again meanwhile (the live events are today's: nothing changed).
    expect(settings.settling).toBe(true)
    expect(f.endpoints[0].settling).toMatchObject({ outcome: 'done', unchanged: true, run_id: expect.any(Number) })
    expect(f.endpoints[0].settling.ms).toBeGreaterThan(0)
  }, 240_000)

  it.skipIf(!gitCheckout)('bench:api:ab and bench:ingest:ab run a commit and this checkout in alternation, each with its own copy of the benchmark', async () => {
    const apiOut = join(dir, 'api-ab.json')
    // Each run on a fresh copy of the data: the folder itself is left as it was.
    const data = join(dir, 'data')
    const listing = () => readdirSync(data, { recursive: true, withFileTypes: true }).map((f) => `${join(f.parentPath, f.name)} ${f.isFile() ? statSync(join(f.parentPath, f.name)).size : 'dir'}`).sort()
    const before = listing()
    const api = await run('api-ab.ts', ['--against', 'HEAD', '--pairs', '2', '--fresh-data', '--out', apiOut, '--', '--smoke', '--data-dir', data, '--clients', '2', '--only', 'settlement totals'])
    expect(api.code, api.out).toBe(0)
    expect(listing()).toEqual(before)
    const a = JSON.parse(readFileSync(apiOut, 'utf8')) as { commits: { before: string; after: string }; runs: { side: string; figures: { endpoints: { name: string; errors: object; warm: { requests: number } }[] } }[] }
    // The pairs take turns at going first.
    expect(a.runs.map((r) => r.side)).toEqual(['before', 'after', 'after', 'before'])
    expect(a.commits.after.startsWith(a.commits.before)).toBe(true)
    for (const r of a.runs) {
      expect(r.figures.endpoints.map((e) => e.name)).toEqual(['settlement totals (creator, days of the month)'])
      expect(r.figures.endpoints[0]!.errors).toEqual({})
      expect(r.figures.endpoints[0]!.warm.requests).toBeGreaterThan(0)
    }
    const ingestOut = join(dir, 'ingest-ab.json')
    const ingest = await run('ingest-ab.ts', ['--against', 'HEAD', '--pairs', '1', '--out', ingestOut, '--', '--smoke'])
    expect(ingest.code, ingest.out).toBe(0)
    const i = JSON.parse(readFileSync(ingestOut, 'utf8')) as {
      runs: { side: string; cpu_us_per_event: number; cpu_us_per_event_by_part: Record<string, number>; figures: { accepted_events_per_second: number } }[]
    }
    expect(i.runs.map((r) => r.side)).toEqual(['before', 'after'])
    for (const r of i.runs) {
      expect(r.figures.accepted_events_per_second).toBeGreaterThan(0)
      expect(r.cpu_us_per_event).toBeGreaterThan(0)
      // The JavaScript thread's share is part of the server's, which is part of the whole.
      const part = r.cpu_us_per_event_by_part
      expect(part.js_thread).toBeGreaterThan(0)
      expect(part.js_thread).toBeLessThanOrEqual(part.server!)
      expect(part.server! + part.redis! + part.generator!).toBeCloseTo(part.all!, 1)
    }
    expect(ingest.out).toMatch(/^before\s+mean of 1: [\d,]+ events\/s/m)
    expect(ingest.out).toMatch(/^after\s+mean of 1: [\d,]+ events\/s/m)
    // With the Bun generator, each run and each side's mean give the answers 503 after the warm-up.
    expect(ingest.out).toMatch(/^after 1\s+.*, answers 503 after the warm-up [\d,]+$/m)
    expect(ingest.out).toMatch(/^before\s+mean of 1: .*, answers 503 after the warm-up [\d,]+$/m)
    // The temporary worktrees are gone.
    expect(spawnSync('git', ['worktree', 'list'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim().split('\n')).toHaveLength(1)
  }, 240_000)

  it.skipIf(!mariadbAnswers)('bench:settle --peer settles the same events in MariaDB to the same amounts', async () => {
    const out = join(dir, 'settle-peer.json')
    const r = await run('settle.ts', ['--peer', '--data-dir', join(dir, 'peer'), '--out', out])
    expect(r.code, r.out).toBe(0)
    const { figures: f } = read(out)
    expect(f.peer.events).toBe(200_000)
    expect(f.peer.same_amounts).toBe(true)
  }, 240_000)
})
