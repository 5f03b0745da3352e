import { TupleParam } from '@clickhouse/client'
import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { insertedBetween, PARTITION_PARTS_SQL, partitionPartNames } from '../../lib/table-parts.ts'
import { periodStart } from '../http/dates.ts'

export type TopGrain = 'day' | 'week' | 'month'
export type TopMetric = 'views' | 'watch_time'

const SOURCES: Record<TopGrain, { table: string; period: string }> = {
  day: { table: 'video_stats_per_day', period: 'day' },
  week: { table: 'video_stats_per_week', period: 'week' },
  month: { table: 'video_stats_per_month', period: 'month' },
}

const topRow = z.object({ video_id: z.string(), creator_id: z.string(), title: z.string(), views: z.coerce.number(), watch_ms: z.coerce.number() })
/** A ranked row as answered (and as kept in the cache). */
export const rankedTopRow = z.object({ rank: z.number().int().min(1), ...topRow.shape })
export type TopRow = z.infer<typeof rankedTopRow>
const rankedRow = topRow.omit({ title: true })
export type TopQuery = { creatorId?: string; metric: TopMetric; grain: TopGrain; date: string; limit: number }
/** The longest top a request may ask for. */
export const MAX_TOP_LIMIT = 100

/**
 * The top videos of the period holding `date` by views or watch time, of one
 * creator or (creatorId omitted) of the platform. Ties are broken by video id.
 *
 * The aggregate table holds one row per (period, creator, video) once merged, so the
 * ranking reads it with FINAL (rows still spread over parts are merged as they are
 * read; a merged period is read as a plain scan, about 3x faster than a GROUP BY over
 * it): a creator's rows whole, the platform's by a threshold (platformTopByThreshold),
 * and only the rows ranked get their titles, looked up by primary key: the videos
 * table is never read whole.
 */
export async function topVideos(ch: ClickHouseClient, q: TopQuery, opts: TopOptions = {}): Promise<{ period: string; rows: TopRow[] }> {
  const source = topSource(q.grain, q.metric)
  const { table, period, metric } = source
  const start = periodStart(q.grain, q.date)
  // A creator's rows are a range of the key: read whole. The platform's are every video of the period.
  const byThreshold = q.creatorId === undefined ? await platformTopByThreshold(ch, { ...source, start, limit: q.limit, hintKey: thresholdKey(q) }, opts) : null
  if (!byThreshold) opts.onRead?.('whole period')
  const ranked =
    byThreshold?.rows ??
    (await select(
      ch,
      `SELECT video_id, creator_id, views, watch_ms
       FROM ${table} FINAL
       WHERE ${period} = {period:Date} AND ({creator:String} = '' OR creator_id = {creator:String}) AND (views > 0 OR watch_ms > 0)
       ORDER BY ${metric} DESC, video_id
       LIMIT {limit:UInt32}`,
      { period: start, creator: q.creatorId ?? '', limit: q.limit },
    ))
  // A ranking by threshold has its titles already (read with the parts after it).
  const titles =
    byThreshold?.titles ??
    (await titlesOf(
      ch,
      ranked.map((r) => r.video_id),
    ))
  return { period: start, rows: ranked.map((r, i) => ({ rank: i + 1, video_id: r.video_id, creator_id: r.creator_id, title: titles.get(r.video_id) ?? '', views: r.views, watch_ms: r.watch_ms })) }
}

export type TopOptions = {
  /** Test hook: runs between reading the threshold (or taking the hint) and the final ranking (inserts land there in tests). */
  beforeRanking?: () => Promise<void>
  /**
   * Told how the ranking was read: by a threshold kept from the last ranking of the same
   * top (hint), by a threshold read now, or the whole period (FINAL).
   */
  onRead?: (how: 'hint' | 'threshold' | 'whole period') => void
  /** The thresholds of platform tops ranked before, tried first (see platformTopByThreshold). */
  hints?: ThresholdHints
}

/**
 * The `limit`-th total of the platform tops last ranked, per table, period, metric and
 * length (at most `max` of them, the oldest out first). A hint only spares reading a
 * threshold: a ranking by it is checked, and read again by a threshold of its own when
 * the check fails (see platformTopByThreshold).
 */
export function thresholdHints(max = 1_000) {
  const kept = new Map<string, number>()
  return {
    get: (key: string): number | undefined => kept.get(key),
    set(key: string, threshold: number): void {
      kept.delete(key)
      kept.set(key, threshold)
      if (kept.size > max) kept.delete(kept.keys().next().value as string)
    },
    drop(key: string): void {
      kept.delete(key)
    },
    get size(): number {
      return kept.size
    },
  }
}
export type ThresholdHints = ReturnType<typeof thresholdHints>

/** The key under which the threshold of the platform top `q` is kept (see thresholdHints): its table, period, metric and length. */
export function thresholdKey(q: Pick<TopQuery, 'metric' | 'grain' | 'date' | 'limit'>): string {
  const { table, metric } = topSource(q.grain, q.metric)
  return JSON.stringify([table, periodStart(q.grain, q.date), metric, q.limit])
}

type RankedRow = z.infer<typeof rankedRow>

async function select(ch: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<RankedRow[]> {
  const rs = await ch.query({ query, query_params: params, format: 'JSONEachRow' })
  return (await rs.json()).map((r) => rankedRow.parse(r))
}

type Source = { table: string; period: string; metric: 'views' | 'watch_ms' }

/**
 * The keys of the rows of period `{period}` whose metric is at least `{least}`: a range of
 * the table's projection ordered by period and metric (migration 0061), a few granules
 * however many videos the period holds.
 */
export const rowsAtLeast = (s: Source) => `SELECT creator_id, video_id FROM ${s.table} WHERE ${s.period} = {period:Date} AND ${s.metric} >= {least:UInt64}`

/** The keys of the `{n}` largest rows of period `{period}` by the metric: the end of that projection's range of the period. */
export const largestRows = (s: Source) =>
  `SELECT creator_id, video_id FROM ${s.table} WHERE ${s.period} = {period:Date} AND ${s.metric} > 0 ORDER BY ${s.metric} DESC LIMIT {n:UInt32}`

/** The table, period column and metric column a top reads (identifiers from closed lists). */
export function topSource(grain: TopGrain, metric: TopMetric): Source {
  return { ...SOURCES[grain], metric: metric === 'views' ? 'views' : 'watch_ms' }
}

/** Parts that may be created while a platform top is computed before it falls back to a full read. */
const NEW_PARTS_ALLOWED = 8

/**
 * The platform's top of a period, exact, without merging every row of the period (FINAL over
 * a day of 4.5M videos took 1.2 s alone on 3 December; this about 0.15 s). A video's total is
 * the sum of its rows, at most one per part (an insert merges its block's equal keys,
 * `optimize_on_insert`, and a merge its parts'), so a video with a total of at least L has a
 * row of at least L / parts, where the parts are those of the period's partition (the
 * tables are partitioned by period; a period that has ended is merged into one part, so its
 * rows at least L are exactly the videos ranked). L is the `limit`-th largest total among
 * the videos of the largest rows; every video with a total of L or more is then read
 * exactly, by key, and ranked. Totals only grow, so an L read earlier is still a lower
 * bound; the ranking counts the parts active before it, and is read again with room for
 * NEW_PARTS_ALLOWED inserts when a part was inserted meanwhile (see insertedBetween); if more
 * were inserted than that, the answer is not trusted: null, and the caller reads the whole
 * period. Null too when the period has fewer than `limit` videos
 * with a positive metric (then it is small).
 *
 * With a hint (the L of the last ranking of this top, kept in `opts.hints`), the ranking is
 * read by it at once, sparing the two reads that find L (about two thirds of the time over a
 * day of 4.5M videos), and kept if its `limit`-th total is at least the hint: a video left
 * out has every row under hint / parts, so a total under the hint, under every video ranked.
 * Otherwise (totals fell, after a repair) L is read as above. Totals only grow within a
 * period, so the last L of a top stays a lower bound, and under live ingest, where an open
 * period's platform top is ranked again every few seconds, the hint nearly always holds.
 *
 * Both the largest rows and the rows of at least L / parts are read from the projection
 * ordered by period and metric (rowsAtLeast, largestRows): over a day of 4.5M videos,
 * finding L took 80-90 ms instead of 205-230, and the rows at or above it 6-7 ms.
 */
async function platformTopByThreshold(
  ch: ClickHouseClient,
  q: Source & { start: string; limit: number; hintKey: string },
  opts: TopOptions,
): Promise<{ rows: RankedRow[]; titles: Map<string, string> } | null> {
  // A user without access to system.parts (a server's choice) gets the whole-period read; so
  // does a period without parts (nothing to rank). Only the period's partition holds its rows.
  const before = await partitionPartNames(ch, q.table, q.start).catch(() => null)
  if (before === null || before.length === 0) return null
  const parts = before.length + NEW_PARTS_ALLOWED
  const where = `${q.period} = {period:Date}`
  /**
   * The videos with a row of at least threshold / parts (rounded up: metrics are integers),
   * ranked by their totals. The parts are first those active before: exact unless a part
   * was inserted meanwhile (merges only lower the count), the usual case, and the fewest
   * videos to read (over the 4.5M-video day, the top-10's ranking 20-25 ms against 31-36
   * with room for 8 more parts). When one was, it is read again with room for
   * NEW_PARTS_ALLOWED more; null when even that was exceeded. The parts after a ranking
   * come with its videos' titles, in one statement: one round trip to the engine less
   * (two queries of 4-21 ms each after the ranking in a trace of bench:api's cold bursts).
   */
  const rankAbove = async (threshold: number) => {
    let from = before
    for (const room of [0, NEW_PARTS_ALLOWED]) {
      await opts.beforeRanking?.()
      const ranked = await select(
        ch,
        `SELECT video_id, creator_id, views, watch_ms FROM ${q.table} FINAL
         WHERE ${where} AND (creator_id, video_id) IN (${rowsAtLeast(q)})
         ORDER BY ${q.metric} DESC, video_id LIMIT {limit:UInt32}`,
        { period: q.start, least: Math.ceil(threshold / (from.length + room)), limit: q.limit },
      )
      const after = await partsAndTitles(ch, q.table, q.start, ranked.map((r) => r.video_id)).catch(() => null)
      if (after === null) return null
      if (insertedBetween(from, after.parts) <= room) return { rows: ranked, titles: after.titles }
      from = after.parts
    }
    return null
  }
  const { hintKey } = q
  const hint = opts.hints?.get(hintKey)
  if (hint !== undefined && hint > 0) {
    const ranked = await rankAbove(hint)
    if (ranked === null) return null
    const { rows } = ranked
    if (rows.length === q.limit && rows[q.limit - 1]![q.metric] >= hint) {
      opts.hints!.set(hintKey, rows[q.limit - 1]![q.metric])
      opts.onRead?.('hint')
      return ranked
    }
    // Not met: tried no more unless a threshold read below replaces it.
    opts.hints!.drop(hintKey)
  }
  // The largest rows hold at least `limit` videos: a video has at most `parts` of them.
  const largest = await ch.query({
    query: `SELECT DISTINCT creator_id, video_id FROM (${largestRows(q)})`,
    query_params: { period: q.start, n: q.limit * parts },
    format: 'JSONEachRow',
  })
  const keys = (await largest.json<{ creator_id: string; video_id: string }>()).map((k) => new TupleParam([k.creator_id, k.video_id]))
  if (keys.length < q.limit) return null
  const totals = await select(
    ch,
    `SELECT video_id, creator_id, views, watch_ms FROM ${q.table} FINAL
     WHERE ${where} AND (creator_id, video_id) IN {keys:Array(Tuple(String, String))}
     ORDER BY ${q.metric} DESC, video_id LIMIT {limit:UInt32}`,
    { period: q.start, keys, limit: q.limit },
  )
  const threshold = totals.length === q.limit ? totals[q.limit - 1]![q.metric] : 0
  if (threshold === 0) return null
  const ranked = await rankAbove(threshold)
  if (ranked === null || ranked.rows.length !== q.limit) return null
  opts.hints?.set(hintKey, ranked.rows[q.limit - 1]![q.metric])
  opts.onRead?.('threshold')
  return ranked
}

/**
 * The active parts of the period's partition (as partitionPartNames), read after the call
 * began, and the latest title of each of these videos, in one statement (a SELECT of two
 * scalar subqueries: one row, whatever either finds). Throws where system.parts may not be read.
 */
async function partsAndTitles(ch: ClickHouseClient, table: string, partition: string, ids: string[]): Promise<{ parts: string[]; titles: Map<string, string> }> {
  const rs = await ch.query({
    query: `SELECT (SELECT groupArray(name) FROM (${PARTITION_PARTS_SQL})) AS parts,
                   (SELECT groupArray([video_id, title]) FROM (${TITLES})) AS titles`,
    query_params: { table, partition, ids },
    format: 'JSONEachRow',
  })
  // Each title as an array [id, title], not a tuple: a server may write named tuples as objects.
  const [row] = await rs.json<{ parts: string[]; titles: [string, string][] }>()
  if (!row) throw new Error('no row from the parts and titles read')
  return { parts: row.parts, titles: new Map(row.titles) }
}

const TITLES = 'SELECT video_id, argMax(title, updated_at) AS title FROM videos WHERE video_id IN {ids:Array(String)} GROUP BY video_id'

/** The latest title of each of these videos (a video never registered has none). */
async function titlesOf(ch: ClickHouseClient, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map()
  const rs = await ch.query({
    query: TITLES,
    query_params: { ids },
    format: 'JSONEachRow',
  })
  return new Map((await rs.json<{ video_id: string; title: string }>()).map((r) => [r.video_id, r.title]))
}
