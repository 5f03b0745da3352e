/**
 * The per-video stats tables partitioned by their period (a day, a week, a month), and
 * each partition merged by the engine into one part once it has taken no insert for an
 * hour (`min_age_to_force_merge_seconds` with `min_age_to_force_merge_on_partition_only`).
 *
 * A stats read of a video costs about the number of parts that may hold its row: each
 * part's granule of the key is read and its unique-viewer state merged. The engine's own
 * merges left the 100M-event bench day in 4 parts of the day table; merged into one, a
 * cold read of a creator's 19 videos took 15.9 ms instead of 34.3, of the 32 most watched
 * 55.8 ms instead of 108.5 (4 December, alone in chDB). Without a partition key the
 * tables are one partition, and merging a closed day into one part would rewrite every
 * day they hold; with one, a period that has ended is merged once, by the engine in the
 * background (no statement of ours holds the embedded engine meanwhile), and a period still
 * open keeps the ordinary merges (it takes inserts all the time, so is never quiet for an
 * hour). An insert into an ended period (late events) opens its partition again: it is
 * merged once more an hour after the last.
 *
 * The engine will not ALTER a partition key, so the tables are rebuilt in place (see
 * rebuild.ts; the copy is merged, one part per partition); the granule size and dedup
 * window of 0060 and the projections of 0061, with the merge mode they need, are kept.
 */
import { anyPartitionCount } from './partitions.ts'
import type { CodeMigration } from './runner.ts'
import { rebuildTables } from './rebuild.ts'

const SETTINGS = [
  'index_granularity_bytes = 65536',
  'non_replicated_deduplication_window = 10000',
  "deduplicate_merge_projection_mode = 'rebuild'",
  'min_age_to_force_merge_seconds = 3600',
  'min_age_to_force_merge_on_partition_only = 1',
].join(', ')

const engine = (period: string) => `AggregatingMergeTree PARTITION BY ${period} ORDER BY (${period}, creator_id, video_id) SETTINGS ${SETTINGS}`

export default {
  requiresIdleIngest: true,
  async up(ch, { sqlOf }) {
    await rebuildTables(anyPartitionCount(ch), {
      tables: [
        { name: 'video_stats_per_day', engine: engine('day'), rebuiltWhen: 'PARTITION BY day' },
        { name: 'video_stats_per_week', engine: engine('week'), rebuiltWhen: 'PARTITION BY week' },
        { name: 'video_stats_per_month', engine: engine('month'), rebuiltWhen: 'PARTITION BY month' },
      ],
      // The day view writes into video_stats_per_day; the week and month views read its blocks.
      views: [
        { name: 'video_stats_per_day_mv', sql: sqlOf(3) },
        { name: 'video_stats_per_week_mv', sql: sqlOf(7) },
        { name: 'video_stats_per_month_mv', sql: sqlOf(11) },
      ],
    })
  },
} satisfies CodeMigration

