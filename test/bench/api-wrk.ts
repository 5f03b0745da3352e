/**
 * bench:api's warm loop in wrk (--generator wrk): `clients` connections, one thread each, for
 * `seconds`, going through `paths` (test/bench/api-wrk.lua times each answer and reads its
 * Cache-Status).
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { addCounts, ROOT } from './lib.ts'

type WrkOut = { duration_s: number; cpu_s: number; requests: number; errors: Record<string, number>; threads: { all_ms: number[]; not_hit_ms: number[]; outcomes: Record<string, number>; statuses: Record<string, number> }[] }
export type WrkRun = { url: string; clients: number; seconds: number; token: string; paths: string[]; workDir: string }

/** Runs wrk once; the answers' latencies (all, and those not plain hits), their outcomes, errors by status and wrk's CPU. */
export async function runWrk(o: WrkRun): Promise<{ all: number[]; notHit: number[]; outcomes: Record<string, number>; errors: Record<string, number>; cpuSeconds: number }> {
  const pathsFile = join(o.workDir, 'paths.txt')
  const outFile = join(o.workDir, 'wrk.json')
  rmSync(outFile, { force: true })
  writeFileSync(pathsFile, o.paths.join('\n') + '\n')
  const args = ['-t', String(o.clients), '-c', String(o.clients), '-d', `${o.seconds}s`, '--timeout', '30s', '-s', join(ROOT, 'test/bench/api-wrk.lua'), o.url, '--', pathsFile, o.token, outFile, String(o.clients)]
  // wrk's own summary goes to stderr with the rest of the progress.
  const code = await new Promise<number | null>((res) => spawn('wrk', args, { stdio: ['ignore', 2, 'inherit'] }).on('exit', res))
  if (code !== 0 || !existsSync(outFile)) throw new Error(`wrk exited with ${code}`)
  const out = JSON.parse(readFileSync(outFile, 'utf8')) as WrkOut
  const all: number[] = []
  const notHit: number[] = []
  const outcomes: Record<string, number> = {}
  const errors: Record<string, number> = {}
  for (const t of out.threads) {
    for (const ms of t.all_ms) all.push(ms)
    for (const ms of t.not_hit_ms) notHit.push(ms)
    addCounts(outcomes, t.outcomes)
    addCounts(errors, t.statuses)
  }
  for (const [k, v] of Object.entries(out.errors)) if (v > 0) errors[`wrk ${k}`] = v
  return { all, notHit, outcomes, errors, cpuSeconds: out.cpu_s }
}
