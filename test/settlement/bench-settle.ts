/**
 * How long settling one day takes for many active videos (not a test; no assertions).
 * Run: node_modules/.bin/bun test/settlement/bench-settle.ts [videos=200000]
 * Writes two days of aggregates straight into the daily tables (one ad per video), then
 * settles day 1 as final (folded into the cumulative tables), day 2 as provisional, day 2
 * again (a rerun), and prints the time of each.
 */
import { startTestServices } from '../harness/services.ts'
import { settle } from '../../jobs/settlement/job.ts'

const videos = Number(process.argv[2] ?? 200_000)
const s = await startTestServices({ LOG_LEVEL: 'warn' })
const time = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
  const t0 = performance.now()
  const out = await f()
  console.log(`${label}: ${((performance.now() - t0) / 1000).toFixed(2)} s`)
  return out
}
try {
  for (const day of ['2024-01-01', '2024-01-02']) {
    await time(`load ${videos} video rows for ${day}`, async () => {
      await s.ch.command({
        query: `INSERT INTO video_stats_per_day (day, creator_id, video_id, views, watch_ms, ad_impressions)
          SELECT {day:Date}, concat('c', toString(number % 20000)), concat('video-', toString(number)), number % 1000 + 1, (number % 1000) * 30000, number % 7
          FROM numbers({n:UInt64})`,
        query_params: { day, n: videos },
      })
      await s.ch.command({
        query: `INSERT INTO ad_impressions_per_day (day, creator_id, video_id, ad_id, impressions)
          SELECT {day:Date}, concat('c', toString(number % 20000)), concat('video-', toString(number)), concat('ad-', toString(number % 50)), number % 7 + 1
          FROM numbers({n:UInt64})`,
        query_params: { day, n: videos },
      })
    })
  }

  const later = () => new Date('2024-01-04T00:00:00+09:00')
  const day = (d: string, finalize = false) => ({ kind: 'days' as const, from: d, to: d, finalize })
  const r1 = await time('settle 2024-01-01 as final (+ fold)', () => settle(s, day('2024-01-01', true), { now: later }))
  console.log(`  ${r1.days[0]!.video_lines} video lines, ${r1.days[0]!.ad_lines} ad lines`)
  await time('settle 2024-01-02 provisional', () => settle(s, day('2024-01-02'), { now: later }))
  await time('rerun 2024-01-02 provisional', () => settle(s, day('2024-01-02'), { now: later }))
  await time('dry run 2024-01-02', () => settle(s, { ...day('2024-01-02'), dryRun: true }, { now: later }))

} finally {
  await s.stopAll()
}
