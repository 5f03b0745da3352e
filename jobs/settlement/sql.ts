import type { ClickHouseSettings } from '@clickhouse/client'
import { wonFromTenthsSql } from '../../lib/money.ts'
import type { PricingMode } from './rate-cards.ts'

/**
 * The settlement SQL. Every value is a `{name:Type}` parameter; the only text chosen
 * in code is the pricing fragment for the card's mode (a fixed whitelist) and whether the
 * lifetime sources are read for the day's keys alone (a fixed fragment).
 *
 * No statement carries its own SETTINGS clause: the chDB connection turns a call's
 * settings into a clause at the end of the text, and two clauses do not parse.
 * Callers pass `lineSettings` instead.
 *
 * Parameters shared by the statements:
 *   day Date, run_id UInt64, status String, computed_at DateTime64(3, 'UTC'),
 *   rate_card_version UInt32, pricing_mode String, tier_floors / video_rates / ad_rates Array(UInt64),
 *   folded_through Date (last final day folded into the cumulative tables),
 *   visible_runs Array(UInt64) (committed runs of the days after folded_through),
 *   parts / part UInt32 (the line statements: the share of the videos, by a hash of the id, one statement settles).
 */

/** Settings for the line statements: both cores for the INSERT … SELECT pipeline. */
export const lineSettings: ClickHouseSettings = { max_insert_threads: '2' }

/**
 * Exact price in tenths of a won of `units` taking a lifetime count from `before` to
 * `before + units` (priceUnits in rate-cards.ts states the same rule in TypeScript).
 * Graduated: tier i (floors[i] < n <= floors[i+1]) prices the units whose n falls in it,
 * clamp(after) - clamp(before) of them. Volume: all units at the tier `after` falls in.
 * The expression is unrolled per tier (the count of tiers is the only thing taken from
 * the card into the text; floors and rates stay parameters): measured 4 to 8 times
 * faster than arrayMap over the tier arrays.
 */
function priceSql(mode: PricingMode, tiers: number, before: string, units: string, rates: 'video_rates' | 'ad_rates'): string {
  if (!Number.isInteger(tiers) || tiers < 1 || tiers > 64) throw new RangeError(`a rate card has 1 to 64 tiers, not ${tiers}`)
  const floor = (i: number) => `{tier_floors:Array(UInt64)}[${i + 1}]`
  const rate = (i: number) => `{${rates}:Array(UInt64)}[${i + 1}]`
  const after = `(${before} + ${units})`
  const idx = Array.from({ length: tiers }, (_, i) => i)
  if (mode === 'volume') {
    const branches = idx.slice(1).reverse().map((i) => `${after} > ${floor(i)}, ${rate(i)}`)
    return `${units} * ${branches.length === 0 ? rate(0) : `multiIf(${branches.join(', ')}, ${rate(0)})`}`
  }
  return idx
    .map((i) => {
      const clamp = (n: string) => (i === tiers - 1 ? `greatest(${n}, ${floor(i)})` : `greatest(least(${n}, ${floor(i + 1)}), ${floor(i)})`)
      return `${rate(i)} * (${clamp(after)} - ${clamp(before)})`
    })
    .join('\n    + ')
}

/**
 * One statement's share of the videos: those whose id hashes to `part` of `parts`. A
 * video's lines (and all its ads) fall in one share, and each share is priced from its own
 * rows, so the shares' lines together are the day's lines. `parts` = 1 keeps every video.
 */
const IN_PART = '({parts:UInt32} = 1 OR cityHash64(video_id) % {parts:UInt32} = {part:UInt32})'

export const VIDEO_LINE_COLUMNS = `day, run_id, status, creator_id, video_id, views, watch_ms, ad_impressions, views_before, views_after,
  rate_card_version, pricing_mode, revenue_tenths, revenue_krw, computed_at`

export const AD_LINE_COLUMNS = `day, run_id, status, creator_id, video_id, ad_id, impressions, impressions_before, impressions_after,
  rate_card_version, pricing_mode, revenue_tenths, revenue_krw, computed_at`

/**
 * The day's video lines: each video active on the day (any views, watch time or
 * impressions), its lifetime views before the day and its price. Lifetime counts come
 * from the cumulative table (one row per video, up to the last folded final day) and the
 * visible lines of the days after it; all three sources go through one GROUP BY, which
 * measured several times faster than a JOIN or an IN filter on the day's videos when the day
 * holds most videos. With `dayOnly` (a day of few videos against its history, see lineParts in
 * day.ts) the lifetime sources are read for the day's videos of the share alone.
 */
export function videoLinesSelect(mode: PricingMode, tiers: number, dayOnly = false): string {
  const only = dayOnly ? ` AND video_id IN (SELECT video_id FROM video_stats_per_day WHERE day = {day:Date} AND ${IN_PART})` : ''
  return `
SELECT
  {day:Date} AS day,
  {run_id:UInt64} AS run_id,
  {status:String} AS status,
  creator_id,
  video_id,
  views,
  watch_ms,
  ad_impressions,
  views_before,
  toUInt64(views_before + views) AS views_after,
  {rate_card_version:UInt32} AS rate_card_version,
  {pricing_mode:String} AS pricing_mode,
  toUInt64(${priceSql(mode, tiers, 'views_before', 'views', 'video_rates')}) AS revenue_tenths,
  toUInt64(${wonFromTenthsSql('revenue_tenths')}) AS revenue_krw,
  {computed_at:DateTime64(3, 'UTC')} AS computed_at
FROM (
  SELECT
    video_id,
    anyIf(creator_id, today) AS creator_id,
    toUInt64(sum(v)) AS views,
    toUInt64(sum(w)) AS watch_ms,
    toUInt64(sum(ai)) AS ad_impressions,
    toUInt64(argMaxIf(after, d, NOT today)) AS views_before
  FROM (
    SELECT true AS today, creator_id, video_id, views AS v, watch_ms AS w, ad_impressions AS ai, toUInt64(0) AS after, day AS d
    FROM video_stats_per_day PREWHERE day = {day:Date} AND ${IN_PART}
    UNION ALL
    SELECT false, '', video_id, 0, 0, 0, views_after, day FROM settlement_video_cumulative PREWHERE ${IN_PART}${only}
    UNION ALL
    SELECT false, '', video_id, 0, 0, 0, views_after, day FROM settlement_video_lines
    WHERE day > {folded_through:Date} AND day < {day:Date} AND run_id IN {visible_runs:Array(UInt64)} AND ${IN_PART}${only}
  )
  GROUP BY video_id
  HAVING countIf(today) > 0 AND (views > 0 OR watch_ms > 0 OR ad_impressions > 0)
)`
}

/**
 * What each line statement's GROUP BY takes in, by kind: the keys (videos, or video and ad
 * pairs) of its three sources, and the day's own rows. The statements are as many as those keys
 * need at SETTLEMENT_STATEMENT_ROWS each (none when the day has no row): counted from the day
 * alone, a day with few events after one of millions of lines went through in one statement
 * holding every video ever settled (the API server's 1.2 GiB at start-up, its scheduler settling
 * such a day). `uniq` over the three is as fast as over the day (~120 ms on bench:settle's day).
 */
export const lineKeysSql = {
  video: `SELECT uniq(video_id) AS keys, uniqIf(video_id, today) AS day_keys, countIf(today) AS day_rows FROM (
  SELECT video_id, true AS today FROM video_stats_per_day WHERE day = {day:Date}
  UNION ALL SELECT video_id, false FROM settlement_video_cumulative
  UNION ALL SELECT video_id, false FROM settlement_video_lines
  WHERE day > {folded_through:Date} AND day < {day:Date} AND run_id IN {visible_runs:Array(UInt64)})`,
  ad: `SELECT uniq(video_id, ad_id) AS keys, uniqIf(video_id, ad_id, today) AS day_keys, countIf(today) AS day_rows FROM (
  SELECT video_id, ad_id, true AS today FROM ad_impressions_per_day WHERE day = {day:Date}
  UNION ALL SELECT video_id, ad_id, false FROM settlement_ad_cumulative
  UNION ALL SELECT video_id, ad_id, false FROM settlement_ad_lines
  WHERE day > {folded_through:Date} AND day < {day:Date} AND run_id IN {visible_runs:Array(UInt64)})`,
} as const

/** The day's (video, ad) lines, priced by the lifetime impressions of that ad on that video; built like the video lines. */
export function adLinesSelect(mode: PricingMode, tiers: number, dayOnly = false): string {
  const only = dayOnly ? ` AND (video_id, ad_id) IN (SELECT video_id, ad_id FROM ad_impressions_per_day WHERE day = {day:Date} AND ${IN_PART})` : ''
  return `
SELECT
  {day:Date} AS day,
  {run_id:UInt64} AS run_id,
  {status:String} AS status,
  creator_id,
  video_id,
  ad_id,
  impressions,
  impressions_before,
  toUInt64(impressions_before + impressions) AS impressions_after,
  {rate_card_version:UInt32} AS rate_card_version,
  {pricing_mode:String} AS pricing_mode,
  toUInt64(${priceSql(mode, tiers, 'impressions_before', 'impressions', 'ad_rates')}) AS revenue_tenths,
  toUInt64(${wonFromTenthsSql('revenue_tenths')}) AS revenue_krw,
  {computed_at:DateTime64(3, 'UTC')} AS computed_at
FROM (
  SELECT
    video_id,
    ad_id,
    anyIf(creator_id, today) AS creator_id,
    toUInt64(sum(i)) AS impressions,
    toUInt64(argMaxIf(after, d, NOT today)) AS impressions_before
  FROM (
    SELECT true AS today, creator_id, video_id, ad_id, impressions AS i, toUInt64(0) AS after, day AS d
    FROM ad_impressions_per_day PREWHERE day = {day:Date} AND ${IN_PART}
    UNION ALL
    SELECT false, '', video_id, ad_id, 0, impressions_after, day FROM settlement_ad_cumulative PREWHERE ${IN_PART}${only}
    UNION ALL
    SELECT false, '', video_id, ad_id, 0, impressions_after, day FROM settlement_ad_lines
    WHERE day > {folded_through:Date} AND day < {day:Date} AND run_id IN {visible_runs:Array(UInt64)} AND ${IN_PART}${only}
  )
  GROUP BY video_id, ad_id
  HAVING countIf(today) > 0 AND impressions > 0
)`
}

const VIDEO_HASH = `cityHash64(day, creator_id, video_id, views, watch_ms, ad_impressions, views_before, views_after,
  rate_card_version, toString(pricing_mode), revenue_tenths, revenue_krw)`
const AD_HASH = `cityHash64(day, creator_id, video_id, ad_id, impressions, impressions_before, impressions_after,
  rate_card_version, toString(pricing_mode), revenue_tenths, revenue_krw)`

/**
 * One kind's lines from `source`: their count, units (views or impressions), KRW and the
 * wrapping sum of their row hashes. Shares of a day's lines add up to the day's (the hash sum
 * modulo 2^64), which is how a dry run sums its shares (see the dry run in day.ts).
 */
export function lineTotalsSql(kind: 'video' | 'ad', source: string): string {
  const [units, hash] = kind === 'video' ? ['views', VIDEO_HASH] : ['impressions', AD_HASH]
  return `SELECT count() AS lines, sum(${units}) AS units, sum(revenue_krw) AS krw, sum(${hash}) AS hash FROM (${source})`
}

/** A run's checksum from its lines' counts and hash sums: order-independent, see summarySql. */
export const checksumSql = 'SELECT lower(hex(cityHash64({video_lines:UInt64}, {video_hash:UInt64}, {ad_lines:UInt64}, {ad_hash:UInt64}))) AS checksum'

/**
 * Counts, sums of truncated lines and the checksum of a run's lines, from two row
 * sources (the stored lines of a run). The checksum is order-independent (a wrapping sum
 * of row hashes) and leaves out run id, status and time, so a rerun that changes nothing
 * has the same checksum (the same as checksumSql makes from the same counts and sums).
 */
export function summarySql(videoSource: string, adSource: string): string {
  return `
SELECT
  v.lines AS video_lines, v.units AS views, v.krw AS video_revenue_krw,
  a.lines AS ad_lines, a.units AS ad_impressions, a.krw AS ad_revenue_krw,
  lower(hex(cityHash64(v.lines, v.hash, a.lines, a.hash))) AS checksum
FROM (${lineTotalsSql('video', videoSource)}) AS v, (${lineTotalsSql('ad', adSource)}) AS a`
}

export const storedVideoLines = 'SELECT * FROM settlement_video_lines WHERE day = {day:Date} AND run_id = {run_id:UInt64}'
export const storedAdLines = 'SELECT * FROM settlement_ad_lines WHERE day = {day:Date} AND run_id = {run_id:UInt64}'

/** Folds a final run's lines into the cumulative tables (rows that are already there are harmless duplicates). */
export const foldVideoCumulative = `INSERT INTO settlement_video_cumulative (video_id, day, views_after)
  SELECT video_id, day, views_after FROM settlement_video_lines WHERE day = {day:Date} AND run_id = {run_id:UInt64} AND views > 0`
export const foldAdCumulative = `INSERT INTO settlement_ad_cumulative (video_id, ad_id, day, impressions_after)
  SELECT video_id, ad_id, day, impressions_after FROM settlement_ad_lines WHERE day = {day:Date} AND run_id = {run_id:UInt64} AND impressions > 0`

/** Drops the lines of a final day's superseded and failed runs (invisible already; this only frees space). */
export const dropSupersededVideoLines = 'DELETE FROM settlement_video_lines WHERE day = {day:Date} AND run_id != {run_id:UInt64}'
export const dropSupersededAdLines = 'DELETE FROM settlement_ad_lines WHERE day = {day:Date} AND run_id != {run_id:UInt64}'

/** The first day before `before` (exclusive) on which the aggregates hold anything; n = 0 when there is none. */
export const firstDataDayBefore = `SELECT
  (SELECT count() FROM video_stats_per_day WHERE day < {before:Date}) + (SELECT count() FROM ad_impressions_per_day WHERE day < {before:Date}) AS n,
  toString(least(
    (SELECT if(count() = 0, toDate('2149-01-01'), min(day)) FROM video_stats_per_day WHERE day < {before:Date}),
    (SELECT if(count() = 0, toDate('2149-01-01'), min(day)) FROM ad_impressions_per_day WHERE day < {before:Date})
  )) AS first`
