/**
 * The per-video stats tables also kept ordered by period and metric (a projection per
 * metric of the platform top: views, watch time), so that the platform's top of a period
 * reads the largest rows of the period instead of scanning every video's: finding the
 * threshold of the top-10 of a day of 4.5M videos took 205-230 ms, 80-90 ms with the
 * projection; the rows at or above a kept threshold are a range of it (see
 * platformTopByThreshold in analytics/top/queries.ts). A projection of an
 * AggregatingMergeTree is rebuilt from the merged rows on each merge
 * (`deduplicate_merge_projection_mode = 'rebuild'`), so it always holds each part's own
 * rows, which is what the threshold read needs (a video's total is the sum of its rows,
 * at most one per part).
 *
 * Ingest may run meanwhile: parts inserted after the projection is added carry it, and
 * MATERIALIZE builds it for the others (a mutation, waited for). Every step is safe to
 * repeat. A later rebuild of these tables (rebuild.ts: `CREATE TABLE … AS` copies the
 * projections) must name the setting in its engine clause, or the engine refuses it.
 */
import type { CodeMigration } from './runner.ts'

/** Identifiers only, from this closed list. */
const TABLES = [
  { name: 'video_stats_per_day', period: 'day' },
  { name: 'video_stats_per_week', period: 'week' },
  { name: 'video_stats_per_month', period: 'month' },
]
const METRICS = ['views', 'watch_ms']

export default {
  requiresIdleIngest: false,
  async up(ch) {
    for (const t of TABLES) {
      await ch.command({ query: `ALTER TABLE ${t.name} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'` })
      for (const m of METRICS)
        await ch.command({ query: `ALTER TABLE ${t.name} ADD PROJECTION IF NOT EXISTS by_${m} (SELECT ${t.period}, creator_id, video_id, ${m} ORDER BY (${t.period}, ${m}))` })
      for (const m of METRICS) await ch.command({ query: `ALTER TABLE ${t.name} MATERIALIZE PROJECTION by_${m}`, clickhouse_settings: { mutations_sync: '2' } })
    }
  },
} satisfies CodeMigration
