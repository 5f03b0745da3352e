/**
 * Runs one benchmark for another commit and for this checkout, one after the other in
 * alternation, so that both see the same state of a shared machine (runs taken on
 * different days, or hours apart, differ by a third and more here). The other commit is
 * checked out in a temporary git worktree that borrows this checkout's node_modules; each
 * side's own copy of the benchmark runs there, with the same flags. Used by
 * bench:ingest:ab and bench:api:ab.
 *
 * The pairs take turns at going first (before, after; then after, before; ...): on this
 * machine the second run of a pair was often the slower one whichever side it ran (4
 * December, `results/api-ab-cache-write-unwaited.json`), so with an even number of pairs
 * each side runs first as often as second.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../harness/engines.ts'
import { BUN, num, parseFlags, ROOT, runChild } from './lib.ts'

export type AbRun<F> = { side: 'before' | 'after'; run: number; date: string; load_average: number[]; figures: F }

/** `<ab flags> -- <benchmark flags>`: --against <commit> (required), --pairs (2), --out. */
export function abArgs(argv: string[]) {
  const split = argv.indexOf('--')
  const flags = parseFlags(split < 0 ? argv : argv.slice(0, split))
  const benchArgs = split < 0 ? [] : argv.slice(split + 1)
  const against = flags.get('against')
  if (!against) throw new Error('--against <commit> is required')
  return { flags, benchArgs, against, pairs: num(flags, 'pairs', 2) }
}

/** Which side of pair `run` (from 1) runs first: the pairs take turns (see above). */
export function pairOrder(run: number): readonly ['before', 'after'] | readonly ['after', 'before'] {
  return run % 2 === 1 ? (['before', 'after'] as const) : (['after', 'before'] as const)
}

/**
 * `pairs` times: `script` (a path under the repository) of `against` and of this
 * checkout, in the order of pairOrder, each with `benchArgs` (or those `argsFor` gives for
 * that run, with what to do once it is over) and its own `--out`; returns every run's
 * figures, and the two sides' names (this checkout's marked `+changes` when it has
 * uncommitted ones).
 */
export async function runInAlternation<F>(opts: {
  script: string
  against: string
  pairs: number
  benchArgs: string[]
  argsFor?: (side: 'before' | 'after', run: number) => { args: string[]; done(): void }
  report(run: AbRun<F>): void
}) {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()
  const sides = { before: git('rev-parse', '--short', opts.against), after: `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', '.', ':!test/bench/results') ? '+changes' : ''}` }
  const tree = join(tempDir('cs-bench-ab-'), 'tree')
  git('worktree', 'add', '--detach', tree, opts.against)
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))
  const runs: AbRun<F>[] = []
  try {
    for (let run = 1; run <= opts.pairs; run++) {
      for (const side of pairOrder(run)) {
        const out = join(tree, '..', `${side}-${run}.json`)
        const dir = side === 'before' ? tree : ROOT
        const given = opts.argsFor?.(side, run) ?? { args: opts.benchArgs, done() {} }
        try {
          await runChild(BUN, [join(dir, opts.script), ...given.args, '--out', out], dir).catch((err: unknown) => {
            // A benchmark of an older commit may fail while closing, after writing its figures (bench:api
            // before 2 December: a load mark in flight when it disconnected from Redis): those figures count.
            if (!existsSync(out)) throw err
            console.error(`[ab] ${side} ${run}: ${err instanceof Error ? err.message : String(err)}, after writing its figures; using them`)
          })
        } finally {
          given.done()
        }
        const r = JSON.parse(readFileSync(out, 'utf8')) as { date: string; machine: { load_average: number[] }; figures: F }
        const entry = { side, run, date: r.date, load_average: r.machine.load_average, figures: r.figures }
        runs.push(entry)
        opts.report(entry)
      }
    }
  } finally {
    git('worktree', 'remove', '--force', tree)
    rmSync(join(tree, '..'), { recursive: true, force: true })
  }
  return { sides, runs }
}
