/**
 * bench:ingest:ab — the edge of another commit against this checkout's, run one after the
 * other in alternation, so that both see the same state of a shared machine (runs taken
 * on different days differ by a third here). The other commit is checked out in a
 * temporary git worktree that borrows this checkout's node_modules.
 *
 *   npm run bench:ingest:ab -- --against <commit> [--pairs 2] [--out file.json] -- <bench:ingest flags>
 *   e.g. npm run bench:ingest:ab -- --against fb9c58a --pairs 2 -- --seconds 30 --export-rows 300000
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../harness/engines.ts'
import { BUN, num, parseFlags, printTable, ROOT, runChild, writeResult } from './lib.ts'

const argv = process.argv.slice(2)
const split = argv.indexOf('--')
const flags = parseFlags(split < 0 ? argv : argv.slice(0, split))
const benchArgs = split < 0 ? [] : argv.slice(split + 1)
const against = flags.get('against')
if (!against) throw new Error('--against <commit> is required')
const pairs = num(flags, 'pairs', 2)

const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()
const sides = { before: git('rev-parse', '--short', against), after: `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', '.', ':!test/bench/results') ? '+changes' : ''}` }
const tree = join(tempDir('cs-bench-ab-'), 'tree')
git('worktree', 'add', '--detach', tree, against)
symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))

type Figures = Record<string, unknown> & { accepted_events_per_second: number; ack_latency_ms: { p50: number; p99: number }; server_cpu_cores: number; redis_cpu_cores: number; generator_cpu_cores: number; server_peak_rss_mib: number }
const runs: { side: keyof typeof sides; run: number; date: string; load_average: number[]; figures: Figures }[] = []
try {
  for (let run = 1; run <= pairs; run++) {
    for (const side of ['before', 'after'] as const) {
      const out = join(tree, '..', `${side}-${run}.json`)
      const dir = side === 'before' ? tree : ROOT
      await runChild(BUN, [join(dir, 'test/bench/ingest.ts'), ...benchArgs, '--out', out], dir)
      const r = JSON.parse(readFileSync(out, 'utf8')) as { date: string; machine: { load_average: number[] }; figures: Figures }
      runs.push({ side, run, date: r.date, load_average: r.machine.load_average, figures: r.figures })
      console.error(`[bench:ingest:ab] ${side} ${run}: ${r.figures.accepted_events_per_second} events/s, p99 ${r.figures.ack_latency_ms.p99} ms`)
    }
  }
} finally {
  git('worktree', 'remove', '--force', tree)
  rmSync(join(tree, '..'), { recursive: true, force: true })
}

/** CPU of server, Redis and generator per accepted event, µs. */
const cpuPerEvent = (f: Figures) => +(((f.server_cpu_cores + f.redis_cpu_cores + f.generator_cpu_cores) * 1e6) / f.accepted_events_per_second).toFixed(1)
printTable(`bench:ingest:ab — ${sides.before} (before) and ${sides.after} (after), ${pairs} pairs, bench:ingest ${benchArgs.join(' ')}`, runs.map((r) => [
  `${r.side} ${r.run}`,
  `${r.figures.accepted_events_per_second.toLocaleString('en-US')} events/s, ack p50 / p99 ${r.figures.ack_latency_ms.p50} / ${r.figures.ack_latency_ms.p99} ms, ${cpuPerEvent(r.figures)} µs CPU per event, RSS ${r.figures.server_peak_rss_mib} MiB`,
]))
const file = writeResult('ingest-ab', { command: `npm run bench:ingest:ab -- ${argv.join(' ')}`, commits: sides, runs: runs.map((r) => ({ ...r, cpu_us_per_event: cpuPerEvent(r.figures) })) }, flags.get('out'))
console.log(`\nwritten ${file}`)
