/**
 * The tables the materialized views write merge their parts in wider steps, as raw_events does
 * since 0063: `merge_selector_base` 20 instead of the engine's 5.
 *
 * Each load adds a part to each of them, twice a second under ingest, and the engine merged
 * those parts as soon as about five of them had gathered, rewriting the per-video states
 * (unique viewers) again and again while the edge answered players on the same cores. The
 * seconds of bench:ingest's paced runs with a merge running were their slowest (test/bench/
 * HISTORY.md, twenty-eighth session: every merge stopped, p99 2.3x lower in five pairs). With
 * this setting, in alternation (thirty-second session, 40 s runs, p99 after the warm-up):
 * 5,000 paced players 44.2 / 49.1 / 51.6 / 65.4 / 60.4 / 119.3 ms against 57.8 / 102.7 / 36.6 /
 * 69.9 / 216.6 / 85.2 (lower in four pairs of six; means 65.0 against 94.8), 7,000 players 134.0
 * / 159.9 against 152.0 / 208.5, the engine's merge threads 0.04-0.05 cores against 0.04-0.07;
 * the API's stats under 20,000 live events a second no slower (warm p99 18.1-31.5 ms against
 * 20.7-31.0).
 *
 * The price is more parts at a time in the open periods (the engine merges a run of parts once
 * they add up to about 20 times the largest); a period an hour quiet is still merged into one
 * part (`min_age_to_force_merge_seconds`). Instant: parts are not rewritten here, and ingest may
 * run meanwhile. A later rebuild of these tables that names their engine clause (as 0062 does)
 * must name the setting there too.
 */
import type { CodeMigration } from './runner.ts'

/** Identifiers only, from this closed list: the aggregate tables (resume_positions keeps the default: it replaces rows by merging). */
const TABLES = ['video_stats_per_day', 'video_stats_per_week', 'video_stats_per_month', 'ad_impressions_per_day', 'ad_impressions_per_week', 'ad_impressions_per_month']

export default {
  requiresIdleIngest: false,
  async up(ch) {
    for (const table of TABLES) await ch.command({ query: `ALTER TABLE ${table} MODIFY SETTING merge_selector_base = 20` })
  },
} satisfies CodeMigration
