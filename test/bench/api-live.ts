/**
 * The live players of bench:api --live-events: bench:ingest's generator (ingest-load.ts),
 * paced at one batch of 10-50 events every 1.5-4.5 s per player (about 10 events a second
 * each), Zipf popularity over the videos and creators bench:settle generated, sending to
 * the server's edge so that real loads land while the API is measured.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { LoadConfig, LoadResult } from './ingest-load.ts'
import { BUN, percentile, runJsonChild, sleep } from './lib.ts'

export type LivePlayersResult = { events_per_second: number; sessions: number; statuses: Record<string, number>; ack_p99_ms: number }

/**
 * Starts about `eventsPerSecond` events a second for `seconds` after a ramp of 3 s, and
 * returns once the ramp is over; `done()` waits for the players and gives what their
 * batches got. `workDir` holds the generator's result file.
 */
export async function startLivePlayers(opts: {
  url: string
  dataDir: string
  issuer: string
  eventsPerSecond: number
  seconds: number
  generated: { videos: number; creators: number; creator0: string }
  seed: number
  workDir: string
}): Promise<{ done(): Promise<LivePlayersResult> }> {
  const out = join(opts.workDir, 'live.json')
  const cfg: LoadConfig = {
    url: opts.url,
    jwksFile: join(opts.dataDir, 'keys', 'playback-jwks.json'),
    issuer: opts.issuer,
    sessions: Math.max(1, Math.round(opts.eventsPerSecond / 10)),
    seconds: opts.seconds + 3,
    ...opts.generated,
    zipfS: 1,
    ips: 50_000,
    selfViewShare: 0.02,
    repeatShare: 0.02,
    badTokenShare: 0,
    thinkMs: 3000,
    seed: opts.seed,
    out,
  }
  const running = runJsonChild(BUN, ['test/bench/ingest-load.ts'], { ...process.env, BENCH_LOAD: JSON.stringify(cfg) })
  await sleep(3000)
  return {
    async done() {
      await running
      const got = JSON.parse(readFileSync(out, 'utf8')) as LoadResult
      const sorted = Float64Array.from(got.latencies_ms).sort()
      return { events_per_second: Math.round(got.acked_events / got.seconds), sessions: cfg.sessions, statuses: got.statuses, ack_p99_ms: +percentile(sorted, 99).toFixed(1) }
    },
  }
}
