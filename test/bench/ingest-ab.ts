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

type Figures = Record<string, unknown> & { accepted_events_per_second: number; ack_latency_ms: { p50: number; p99: number }; server_cpu_cores: number; redis_cpu_cores: number; generator_cpu_cores: number; server_peak_rss_mib: number }
const { sides, runs } = await runInAlternation<Figures>({
  script: 'test/bench/ingest.ts',
  against,
  pairs,
  benchArgs,
  report: (r) => console.error(`[bench:ingest:ab] ${r.side} ${r.run}: ${r.figures.accepted_events_per_second} events/s, p99 ${r.figures.ack_latency_ms.p99} ms`),
})

/** CPU of server, Redis and generator per accepted event, µs. */
const cpuPerEvent = (f: Figures) => +(((f.server_cpu_cores + f.redis_cpu_cores + f.generator_cpu_cores) * 1e6) / f.accepted_events_per_second).toFixed(1)
printTable(`bench:ingest:ab — ${sides.before} (before) and ${sides.after} (after), ${pairs} pairs, bench:ingest ${benchArgs.join(' ')}`, runs.map((r) => [
  `${r.side} ${r.run}`,
  `${r.figures.accepted_events_per_second.toLocaleString('en-US')} events/s, ack p50 / p99 ${r.figures.ack_latency_ms.p50} / ${r.figures.ack_latency_ms.p99} ms, ${cpuPerEvent(r.figures)} µs CPU per event, RSS ${r.figures.server_peak_rss_mib} MiB`,
]))
const file = writeResult('ingest-ab', { command: `npm run bench:ingest:ab -- ${argv.join(' ')}`, commits: sides, runs: runs.map((r) => ({ ...r, cpu_us_per_event: cpuPerEvent(r.figures) })) }, flags.get('out'))
console.log(`\nwritten ${file}`)
