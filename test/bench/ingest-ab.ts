/**
 * bench:ingest:ab — the edge of another commit against this checkout's, run one after the
 * other in alternation (see ab.ts), so that both see the same state of a shared machine.
 *
 *   npm run bench:ingest:ab -- --against <commit> [--pairs 2] [--out file.json] -- <bench:ingest flags>
 *   e.g. npm run bench:ingest:ab -- --against fb9c58a --pairs 2 -- --seconds 30 --export-rows 300000
 */
import { abArgs, runInAlternation } from './ab.ts'
import { printTable, writeResult } from './lib.ts'

const argv = process.argv.slice(2)
const { flags, benchArgs, against, pairs } = abArgs(argv)

type Figures = Record<string, unknown> & {
  accepted_events_per_second: number
  ack_latency_ms: { p50: number; p99: number }
  steady_state?: { ack_latency_ms: { p99: number }; answers_503?: number | null }
  server_cpu_cores: number
  redis_cpu_cores: number
  generator_cpu_cores: number
  server_cpu_cores_by_thread?: Record<string, number>
  server_peak_rss_mib: number
}
const { sides, runs } = await runInAlternation<Figures>({
  script: 'test/bench/ingest.ts',
  against,
  pairs,
  benchArgs,
  report: (r) => console.error(`[bench:ingest:ab] ${r.side} ${r.run}: ${r.figures.accepted_events_per_second} events/s, p99 ${r.figures.ack_latency_ms.p99} ms`),
})

/**
 * CPU per accepted event (µs): all of it (server, Redis, generator), and by part, the edge's
 * JavaScript thread (the server's thread named bun) among them: a change to the edge's code
 * is seen in the part it changes, apart from the others' shares, which vary from run to run
 * (HISTORY.md, 5 December, evening).
 */
const perEvent = (cores: number, f: Figures) => +((cores * 1e6) / f.accepted_events_per_second).toFixed(2)
const cpu = (f: Figures) => ({
  all: perEvent(f.server_cpu_cores + f.redis_cpu_cores + f.generator_cpu_cores, f),
  js_thread: perEvent(f.server_cpu_cores_by_thread?.bun ?? 0, f),
  server: perEvent(f.server_cpu_cores, f),
  redis: perEvent(f.redis_cpu_cores, f),
  generator: perEvent(f.generator_cpu_cores, f),
})
const p99 = (f: Figures) => f.steady_state?.ack_latency_ms.p99 ?? f.ack_latency_ms.p99
const mean = (xs: number[]) => +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2)
/** Answers 503 after the warm-up (the Bun generator counts them by second; wrk's results have none). */
const refusedAfterWarmup = (f: Figures): number | null => f.steady_state?.answers_503 ?? null
const refusedText = (xs: (number | null)[]) => (xs.every((x) => x !== null) ? `, answers 503 after the warm-up ${xs.length > 1 ? 'mean ' : ''}${Math.round(mean(xs as number[])).toLocaleString('en-US')}` : '')
const side = (name: 'before' | 'after') => runs.filter((r) => r.side === name).map((r) => r.figures)
const summary = (name: 'before' | 'after') => {
  const fs = side(name)
  return `mean of ${fs.length}: ${Math.round(mean(fs.map((f) => f.accepted_events_per_second))).toLocaleString('en-US')} events/s, p99 after the warm-up ${mean(fs.map(p99))} ms, µs CPU per event ${mean(fs.map((f) => cpu(f).all))} (JavaScript thread ${mean(fs.map((f) => cpu(f).js_thread))}), RSS ${Math.round(mean(fs.map((f) => f.server_peak_rss_mib)))} MiB${refusedText(fs.map(refusedAfterWarmup))}`
}
printTable(`bench:ingest:ab — ${sides.before} (before) and ${sides.after} (after), ${pairs} pairs, bench:ingest ${benchArgs.join(' ')}`, [
  ...runs.map((r) => {
    const c = cpu(r.figures)
    return [
      `${r.side} ${r.run}`,
      `${r.figures.accepted_events_per_second.toLocaleString('en-US')} events/s, ack p50 / p99 ${r.figures.ack_latency_ms.p50} / ${r.figures.ack_latency_ms.p99} ms (after the warm-up ${p99(r.figures)}), µs CPU per event ${c.all}: JavaScript thread ${c.js_thread}, server ${c.server}, Redis ${c.redis}, generator ${c.generator}; RSS ${r.figures.server_peak_rss_mib} MiB${refusedText([refusedAfterWarmup(r.figures)])}`,
    ] as [string, string]
  }),
  ['before', summary('before')] as [string, string],
  ['after', summary('after')] as [string, string],
])
const file = writeResult('ingest-ab', { command: `npm run bench:ingest:ab -- ${argv.join(' ')}`, commits: sides, runs: runs.map((r) => {
    const c = cpu(r.figures)
    return { ...r, cpu_us_per_event: c.all, cpu_us_per_event_by_part: c }
  }) }, flags.get('out'))
console.log(`\nwritten ${file}`)
