import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { topVideos, type TopGrain } from '../../analytics/top/queries.ts'
import type { EventRow } from './events.ts'

// Datasets and helpers of the top's tests (analytics/top/top.test.ts, top-parts.test.ts).

/** `n` counted plays of a video on 2 March, in one insert. */
export const plays = (video: string, n: number): EventRow[] => Array.from({ length: n }, (_, i) => ({ type: 'play', video_id: video, creator_id: 'c', viewer_id: `w${i}`, at: '2026-03-02 01:00:00' }))

/**
 * The platform's day top-5 of 2 March, `insert(n)` run before its n-th ranking read: how many
 * there were, how the ranking was read, and its (video, views).
 */
export async function rankWhileInserting(ch: ClickHouseClient, insert: (ranking: number) => Promise<void>) {
  let rankings = 0
  let how = ''
  const got = await topVideos(
    ch,
    { metric: 'views', grain: 'day', date: '2026-03-02', limit: 5 },
    { beforeRanking: () => insert(++rankings), onRead: (h) => (how = h) },
  )
  return { rankings, how, rows: got.rows.map((r) => [r.video_id, r.views]), titles: got.rows.map((r) => r.title) }
}

export const TABLES: Record<TopGrain, [string, string]> = { day: ['video_stats_per_day', 'day'], week: ['video_stats_per_week', 'week'], month: ['video_stats_per_month', 'month'] }
export const PERIODS: Record<TopGrain, string> = { day: '2026-03-02', week: '2026-03-02', month: '2026-03-01' }

/** Runs `fn` on empty tables with the day table's merges stopped, so that each insert stays a part of its own. */
export async function inPartsOfTheirOwn(ch: ClickHouseClient, fn: () => Promise<void>): Promise<void> {
  await emptyTables(ch)
  await ch.command({ query: 'SYSTEM STOP MERGES video_stats_per_day' })
  try {
    await fn()
  } finally {
    await ch.command({ query: 'SYSTEM START MERGES video_stats_per_day' })
  }
}

/** Empties raw_events and the three aggregate tables, so a dataset is ranked alone. */
export async function emptyTables(ch: ClickHouseClient): Promise<void> {
  for (const table of ['raw_events', ...Object.values(TABLES).map(([name]) => name)]) await ch.command({ query: `TRUNCATE TABLE ${table}` })
}
