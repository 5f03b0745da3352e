/**
 * bench:api:ab — the API of another commit against this checkout's, each run by its own
 * bench:api with the same flags, one after the other in alternation (see ab.ts). Give
 * `--data-dir` among the bench:api flags to have both sides read the same data (each
 * side's default is a folder of its own checkout). With --fresh-data each run reads a
 * copy of that folder made just before it (and removed after it), so that no run reads
 * what the one before it wrote: the server's own Redis starts empty each time, but the
 * engine keeps what a run's warm loop and settlement scheduler left in the folder.
 *
 *   npm run bench:api:ab -- --against <commit> [--pairs 2] [--fresh-data] [--out file.json] -- <bench:api flags>
 *   e.g. npm run bench:api:ab -- --against 20b03fd --fresh-data -- --only stats --data-dir data/bench
 */
import { cpSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tempDir } from '../harness/engines.ts'
import { abArgs, runInAlternation } from './ab.ts'
import { printTable, ROOT, writeResult } from './lib.ts'

const argv = process.argv.slice(2)
const { flags, benchArgs: given, against, pairs } = abArgs(argv)
// A relative --data-dir means this checkout's folder on both sides.
const benchArgs = given.map((a, i) => (given[i - 1] === '--data-dir' ? resolve(ROOT, a) : a))
const dataAt = benchArgs.indexOf('--data-dir') + 1
if (flags.has('fresh-data') && dataAt === 0) throw new Error('--fresh-data copies the folder of --data-dir: give one among the bench:api flags')
/** With --fresh-data: the run's own copy of the data folder, in place of it, removed once the run is over. */
const argsFor = flags.has('fresh-data')
  ? () => {
      const copy = join(tempDir('cs-bench-ab-data-'), 'data')
      cpSync(benchArgs[dataAt]!, copy, { recursive: true })
      return { args: benchArgs.map((a, i) => (i === dataAt ? copy : a)), done: () => rmSync(join(copy, '..'), { recursive: true, force: true }) }
    }
  : undefined

type Latencies = { p50: number; p99: number }
type Endpoint = { name: string; cold: Latencies; warm: Latencies & { rps: number; hit_share: number } }
type Figures = { endpoints: Endpoint[]; server_peak_rss_mib: number }
const { sides, runs } = await runInAlternation<Figures>({
  script: 'test/bench/api.ts',
  against,
  pairs,
  benchArgs,
  argsFor,
  report: (r) => console.error(`[bench:api:ab] ${r.side} ${r.run}: ${r.figures.endpoints.map((e) => `${e.name}: ${e.warm.rps} req/s, p99 ${e.warm.p99} ms`).join('; ')}`),
})

const names = [...new Set(runs.flatMap((r) => r.figures.endpoints.map((e) => e.name)))]
printTable(
  `bench:api:ab — ${sides.before} (before) and ${sides.after} (after), ${pairs} pairs, bench:api ${benchArgs.join(' ')}; warm req/s, p50 / p99 ms; cold p99 ms`,
  names.flatMap((name) =>
    runs.map((r) => {
      const e = r.figures.endpoints.find((x) => x.name === name)
      return [`${name}, ${r.side} ${r.run}`, e ? `${e.warm.rps} req/s, ${e.warm.p50} / ${e.warm.p99} ms, ${Math.round(e.warm.hit_share * 100)} % hits; cold ${e.cold.p99} ms` : '-'] as [string, string]
    }),
  ),
)
const file = writeResult('api-ab', { command: `npm run bench:api:ab -- ${argv.join(' ')}`, commits: sides, runs }, flags.get('out'))
console.log(`\nwritten ${file}`)
