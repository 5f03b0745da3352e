/**
 * The per-video stats tables in granules of at most 64 KiB (ClickHouse's default is up
 * to 8,192 rows or 10 MiB). Their rows carry the unique-viewer state of a video, which
 * for the most watched videos holds tens of thousands of viewers, and reading one
 * video's row deserialised every state of its granule: stats of the most watched
 * videos cost chDB 27-28 ms a batch of 12 in 8,192-row granules and 15-17 ms in 64 KiB
 * ones (3 December, bench:api's day of 232,580 videos; the same as 256-row granules,
 * while tail rows of a few hundred bytes still share a granule by the hundred, which
 * keeps the primary index small). The engine will not ALTER a table's granule size, so
 * the tables are rebuilt in place (see rebuild.ts); the settings the aggregates were
 * written with (non_replicated_deduplication_window) are kept.
 */
import type { CodeMigration } from './runner.ts'
import { rebuildTables } from './rebuild.ts'

const SETTINGS = 'SETTINGS index_granularity_bytes = 65536, non_replicated_deduplication_window = 10000'

export default {
  requiresIdleIngest: true,
  async up(ch, { sqlOf }) {
    await rebuildTables(ch, {
      tables: [
        { name: 'video_stats_per_day', engine: `AggregatingMergeTree ORDER BY (day, creator_id, video_id) ${SETTINGS}`, rebuiltWhen: 'index_granularity_bytes = 65536' },
        { name: 'video_stats_per_week', engine: `AggregatingMergeTree ORDER BY (week, creator_id, video_id) ${SETTINGS}`, rebuiltWhen: 'index_granularity_bytes = 65536' },
        { name: 'video_stats_per_month', engine: `AggregatingMergeTree ORDER BY (month, creator_id, video_id) ${SETTINGS}`, rebuiltWhen: 'index_granularity_bytes = 65536' },
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
