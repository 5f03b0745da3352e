/**
 * The per-video stats tables compress their columns in blocks of about 4 KB instead of the
 * engine's 64 KB (`min_compress_block_size`), so that a stats read, which wants one row of a
 * video in each of a few granules, decompresses little more than those granules.
 *
 * Their granules are small (0060: at most 64 KB of a row's data, about 240 rows where the
 * busiest videos' states are), but a column's compressed block spanned many of them: a sum
 * column's granule is about 2 KB, and reading it meant decompressing the 64 KB block it sat
 * in. The batch read of a cold burst (32 of the day's 100th-130th most watched videos, 30
 * days, over the 100M-event day; chDB alone, 15 bursts in alternation with a copy of the
 * table at the default) decompressed 2.6 MB instead of 10.9 and took a median 12.8 ms
 * instead of 15.8; the whole table compressed 2.4 % larger, and a full read of the day (what
 * the settlement reads) took as long (test/bench/HISTORY.md, twenty-fourth session).
 *
 * Parts written from now on (a load's, a merge's) take the setting; parts written before
 * keep their blocks until a merge rewrites them. Instant: nothing is rewritten here, and
 * ingest may run meanwhile. A later rebuild of these tables that names their engine clause
 * (as 0062 does) must name the setting there too.
 */
import type { CodeMigration } from './runner.ts'

/** Identifiers only, from this closed list. */
const TABLES = ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month']

export default {
  requiresIdleIngest: false,
  async up(ch) {
    for (const table of TABLES) await ch.command({ query: `ALTER TABLE ${table} MODIFY SETTING min_compress_block_size = 4096` })
  },
} satisfies CodeMigration
