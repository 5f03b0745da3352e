/**
 * `resume_positions` in granules of 1,024 rows (the engine's default is 8,192) whose columns
 * are compressed in blocks of about 4 KB (the default 64 KB), so that looking viewers'
 * positions up reads little more than their rows.
 *
 * Every session start of a returning viewer looks its stored position up, and concurrent
 * starts look theirs up in one statement (analytics/playback/lookups.ts). On the 100M-event
 * day (94.6M positions), 32 stored positions took 24.4-32.9 ms (medians 27.3 and 30.9 in two
 * rounds of ten) in 8,192-row granules, each pair decompressing a 64 KB block of each column,
 * and **8.5-11.1 ms** (medians 9.6 and 9.7) in 1,024-row granules of 4 KB blocks; 256-row ones
 * were no faster (8.1-14.8, their first lookup 64-68 ms against 24-26); 32 viewers with no
 * position 3.5-3.9 against 2.7-2.8 ms (chDB alone, in turns over copies of the table,
 * test/bench/HISTORY.md, thirty-ninth session). The table takes 2 % more room on disk; its
 * primary index in memory grows from 0.19 to 1.5 MB (256-row granules: 6 MB).
 *
 * The engine will not ALTER a table's granule size, so the table is rebuilt in place
 * (rebuild.ts): a materialized view writes into it, so ingest must be idle meanwhile.
 */
import type { CodeMigration } from './runner.ts'
import { rebuildTables } from './rebuild.ts'

export default {
  requiresIdleIngest: true,
  async up(ch, { sqlOf }) {
    await rebuildTables(ch, {
      tables: [
        {
          name: 'resume_positions',
          // The dedup window the view's retried loads rely on is kept.
          engine: 'ReplacingMergeTree(updated_at) ORDER BY (viewer_id, video_id) SETTINGS index_granularity = 1024, min_compress_block_size = 4096, non_replicated_deduplication_window = 10000',
          rebuiltWhen: 'index_granularity = 1024',
        },
      ],
      views: [{ name: 'resume_positions_mv', sql: sqlOf(15) }],
    })
  },
} satisfies CodeMigration
