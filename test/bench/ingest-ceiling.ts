import { spawnSync } from 'node:child_process'
import { BUN, runJsonChild, sleep } from './lib.ts'

/** One bulk insert of the exported rows into a fresh engine (ingest-engine.ts ceiling). */
export type CeilingRun = { rows: number; stored: number; seconds: number; rows_per_second: number; block_rows: number }
/** The median run's figures, with every run's rows per second in the order they ran. */
export type Ceiling = CeilingRun & { runs_rows_per_second: number[] }

/**
 * The raw-insert ceiling, measured `runs` times, each in a process and engine of its own after
 * the page cache's dirty pages are written back (`sync`, then 3 s), and given as the median run.
 * One 5–10 s run swung by half between benchmarks of the same hour (303,430 and 446,028 rows/s,
 * 6 December, twenty-seventh session) while the edge's rate is a mean over 60 s or more; and
 * back to back, a run was slower while the previous one's deleted parts were still being written
 * back (HISTORY.md, twentieth session).
 */
export async function measureCeiling(exportFile: string, blockRows: number, runs: number): Promise<Ceiling> {
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--ceiling-runs must be a positive integer, got ${runs}`)
  const done: CeilingRun[] = []
  for (let i = 0; i < runs; i++) {
    spawnSync('sync')
    await sleep(3_000)
    done.push(await runJsonChild<CeilingRun>(BUN, ['test/bench/ingest-engine.ts', 'ceiling', exportFile, String(blockRows)]))
  }
  const median = [...done].sort((a, b) => a.rows_per_second - b.rows_per_second)[Math.floor((done.length - 1) / 2)]!
  return { ...median, runs_rows_per_second: done.map((r) => Math.round(r.rows_per_second)) }
}
