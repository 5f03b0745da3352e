/**
 * The load generator of bench:ingest in wrk (`--generator wrk`; ingest-load.ts, the Bun one,
 * is the default): signs the playback sessions first (ES256, here: the script in wrk cannot;
 * the same sessions as the Bun generator's, see ingest-sessions.ts), then runs wrk with
 * test/bench/ingest-wrk.lua for the run's seconds and writes the same result as ingest-load.ts.
 *
 * Config: JSON in BENCH_LOAD (see LoadConfig); result: JSON written to `out`.
 */
import { spawn } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { LoadConfig, LoadResult } from './ingest-load.ts'
import { sessionMaker, sessionsFor } from './ingest-sessions.ts'
import { addCounts, CLOCK_STARTED, ensureWrk, ROOT } from './lib.ts'

type WrkThread = {
  statuses: Record<string, number>
  rejected: Record<string, number>
  per_second: Record<string, number>
  acked: Record<string, number>
  latencies_ms: number[]
  sent_at_s: number[]
  accepted: number
  duplicates: number
  requests: number
  sessions_started: number
  sessions_reused: number
  unmatched: number
}
type WrkOut = { duration_s: number; cpu_s: number; errors: Record<string, number>; threads: WrkThread[] }

const cfg = JSON.parse(process.env.BENCH_LOAD ?? '') as LoadConfig
ensureWrk()
const sessions = await sessionMaker(cfg)
// wrk's threads: one per core; each connection a batch in flight. Three times as many players as
// connections, so that a free connection finds a player with no batch in flight and none waiting out a Retry-After.
const threads = Math.max(1, Math.min(2, cfg.sessions))
const perThread = Math.ceil((3 * cfg.sessions) / threads) + 1
// Enough sessions for 250k events/s; past that they are reused.
const sessionCount = Math.max(threads * 50, sessionsFor(cfg, 250_000))
const lines: string[] = []
for (let i = 0; i < sessionCount; i++) {
  const { token, videoId, creatorId, adId, ip } = await sessions.next()
  lines.push(`${token}\t${videoId}\t${creatorId}\t${adId}\t${ip}`)
}
const dir = dirname(cfg.out)
const sessionsFile = join(dir, 'wrk-sessions.tsv')
const outFile = join(dir, 'wrk-out.json')
writeFileSync(sessionsFile, lines.join('\n') + '\n')
rmSync(outFile, { force: true })

const args = ['-t', String(threads), '-c', String(cfg.sessions), '-d', `${cfg.seconds}s`, '--timeout', '30s', '-s', join(ROOT, 'test/bench/ingest-wrk.lua'), cfg.url, '--']
args.push(sessionsFile, outFile, String(threads), String(perThread), String(cfg.repeatShare), String(cfg.badTokenShare), String(cfg.thinkMs), String(cfg.seed))
// wrk's own summary goes to stderr with the rest of the progress.
// bench:ingest starts measuring the server when this line comes (after the tokens' signing).
console.log(CLOCK_STARTED)
const code = await new Promise<number | null>((res) => spawn('wrk', args, { stdio: ['ignore', 2, 'inherit'], env: { ...process.env, CS_WRK_THINK_MS: String(cfg.thinkMs) } }).on('exit', res))
if (code !== 0) throw new Error(`wrk exited with ${code}`)
const out = JSON.parse(readFileSync(outFile, 'utf8')) as WrkOut
rmSync(sessionsFile, { force: true })

const statuses: Record<string, number> = {}
const rejected: Record<string, number> = {}
const perSecond: Record<string, number> = {}
const ackedPerSlot = new Array<number>(threads * perThread).fill(0)
const latencies: number[] = []
const sentAt: number[] = []
let accepted = 0
let duplicates = 0
let requests = 0
let sessionsStarted = 0
let sessionsReused = 0
let unmatched = 0
for (const t of out.threads) {
  addCounts(statuses, t.statuses)
  addCounts(rejected, t.rejected)
  addCounts(perSecond, t.per_second)
  for (const [slot, seq] of Object.entries(t.acked)) ackedPerSlot[Number(slot)] = seq
  for (const x of t.latencies_ms) latencies.push(x)
  for (const x of t.sent_at_s) sentAt.push(x)
  accepted += t.accepted
  duplicates += t.duplicates
  requests += t.requests
  sessionsStarted += t.sessions_started
  sessionsReused += t.sessions_reused
  unmatched += t.unmatched
}
// An answer without the X-Request-Id of a request in flight would leave its player stuck.
if (unmatched > 0) throw new Error(`${unmatched} answers matched no request in flight`)
const seconds = Math.max(...Object.keys(perSecond).map(Number), 0) + 1
const result: LoadResult & { sessions_reused: number } = {
  seconds: out.duration_s,
  requests,
  statuses,
  accepted,
  duplicates,
  rejected,
  acked_events: ackedPerSlot.reduce((a, b) => a + b, 0),
  acked_per_slot: ackedPerSlot,
  latencies_ms: latencies,
  sent_at_s: sentAt,
  accepted_per_second: Array.from({ length: seconds }, (_, i) => perSecond[i] ?? 0),
  sessions_started: sessionsStarted,
  sessions_reused: sessionsReused,
  cpu_seconds: out.cpu_s,
  network_errors: Object.values(out.errors).reduce((a, b) => a + b, 0),
}
writeFileSync(cfg.out, JSON.stringify(result))
console.log(JSON.stringify({ ok: true }))
