import { wonFromTenthsSql } from '../../lib/money.ts'
import type { PricingMode } from './rate-cards.ts'

/**
 * The settlement SQL. Every value is a `{name:Type}` parameter; the only text chosen
 * in code is the pricing fragment for the card's mode (a fixed whitelist).
 *
 * No statement carries its own SETTINGS clause: through chDB the client appends one to
 * the text, and two clauses do not parse. Callers pass `lineSettings` instead.
 *
 * Parameters shared by the statements:
 *   day Date, run_id UInt64, status String, computed_at DateTime64(3, 'UTC'),
 *   rate_card_version UInt32, pricing_mode String, tier_floors / video_rates / ad_rates Array(UInt64),
 *   folded_through Date (last final day folded into the cumulative tables),
 *   visible_runs Array(UInt64) (committed runs of the days after folded_through).
 */

const MAX_U64 = '18446744073709551615'

/** Settings for the line statements: a video without history joins as 0 views before, not NULL. */
export const lineSettings = { join_use_nulls: 0 } as const

/**
 * Exact price in tenths of a won of `units` taking a lifetime count from `before` to
 * `before + units` (see priceUnits in rate-cards.ts for the same rule in TypeScript).
 * Graduated: tier i (floors[i] < n <= floors[i+1]) prices the units whose n falls in it,
 * clamp(after) - clamp(before) of them. Volume: all units at the tier of `after`.
 */
function priceSql(mode: PricingMode, before: string, units: string, rates: 'video_rates' | 'ad_rates'): string {
  if (mode === 'volume')
    return `if(${units} = 0, 0, ${units} * {${rates}:Array(UInt64)}[arrayLastIndex(lo -> lo < ${before} + ${units}, {tier_floors:Array(UInt64)})])`
  return `arraySum(arrayMap((lo, hi, rate) -> rate * (greatest(least(${before} + ${units}, hi), lo) - greatest(least(${before}, hi), lo)),
      {tier_floors:Array(UInt64)}, arrayPushBack(arrayPopFront({tier_floors:Array(UInt64)}), ${MAX_U64}), {${rates}:Array(UInt64)}))`
}

export const VIDEO_LINE_COLUMNS = `day, run_id, status, creator_id, video_id, views, watch_ms, ad_impressions, views_before, views_after,
  rate_card_version, pricing_mode, revenue_tenths, revenue_krw, computed_at`

export const AD_LINE_COLUMNS = `day, run_id, status, creator_id, video_id, ad_id, impressions, impressions_before, impressions_after,
  rate_card_version, pricing_mode, revenue_tenths, revenue_krw, computed_at`

/**
 * The day's video lines: each video active on the day (any views, watch time or
 * impressions), its lifetime views before the day (the cumulative table up to the
 * last folded final day, then the visible lines of the days after it), and its price.
 * Reads only the day's slice of the aggregates and one row per video of history.
 */
export function videoLinesSelect(mode: PricingMode): string {
  return `
WITH
  active AS (SELECT video_id FROM video_stats_per_day WHERE day = {day:Date}),
  prior AS (
    SELECT video_id, argMax(views_after, d) AS views_before
    FROM (
      SELECT video_id, day AS d, views_after FROM settlement_video_cumulative
      WHERE video_id IN active
      UNION ALL
      SELECT video_id, day AS d, views_after FROM settlement_video_lines
      WHERE day > {folded_through:Date} AND day < {day:Date} AND run_id IN {visible_runs:Array(UInt64)} AND video_id IN active
    )
    GROUP BY video_id
  ),
  today AS (
    SELECT creator_id, video_id, sum(views) AS v, sum(watch_ms) AS w, sum(ad_impressions) AS ai
    FROM video_stats_per_day
    WHERE day = {day:Date}
    GROUP BY creator_id, video_id
    HAVING v > 0 OR w > 0 OR ai > 0
  ),
  priced AS (
    SELECT t.creator_id AS creator_id, t.video_id AS video_id, t.v AS v, t.w AS w, t.ai AS ai, p.views_before AS before,
      toUInt64(${priceSql(mode, 'before', 'v', 'video_rates')}) AS tenths
    FROM today AS t LEFT JOIN prior AS p ON p.video_id = t.video_id
  )
SELECT
  {day:Date} AS day,
  {run_id:UInt64} AS run_id,
  {status:String} AS status,
  creator_id,
  video_id,
  toUInt64(v) AS views,
  toUInt64(w) AS watch_ms,
  toUInt64(ai) AS ad_impressions,
  toUInt64(before) AS views_before,
  toUInt64(before + v) AS views_after,
  {rate_card_version:UInt32} AS rate_card_version,
  {pricing_mode:String} AS pricing_mode,
  tenths AS revenue_tenths,
  toUInt64(${wonFromTenthsSql('tenths')}) AS revenue_krw,
  {computed_at:DateTime64(3, 'UTC')} AS computed_at
FROM priced`
}

/** The day's (video, ad) lines, priced by the lifetime impressions of that ad on that video. */
export function adLinesSelect(mode: PricingMode): string {
  return `
WITH
  active AS (SELECT video_id, ad_id FROM ad_impressions_per_day WHERE day = {day:Date}),
  prior AS (
    SELECT video_id, ad_id, argMax(impressions_after, d) AS impressions_before
    FROM (
      SELECT video_id, ad_id, day AS d, impressions_after FROM settlement_ad_cumulative
      WHERE (video_id, ad_id) IN active
      UNION ALL
      SELECT video_id, ad_id, day AS d, impressions_after FROM settlement_ad_lines
      WHERE day > {folded_through:Date} AND day < {day:Date} AND run_id IN {visible_runs:Array(UInt64)} AND (video_id, ad_id) IN active
    )
    GROUP BY video_id, ad_id
  ),
  today AS (
    SELECT creator_id, video_id, ad_id, sum(impressions) AS i
    FROM ad_impressions_per_day
    WHERE day = {day:Date}
    GROUP BY creator_id, video_id, ad_id
    HAVING i > 0
  ),
  priced AS (
    SELECT t.creator_id AS creator_id, t.video_id AS video_id, t.ad_id AS ad_id, t.i AS i, p.impressions_before AS before,
      toUInt64(${priceSql(mode, 'before', 'i', 'ad_rates')}) AS tenths
    FROM today AS t LEFT JOIN prior AS p ON p.video_id = t.video_id AND p.ad_id = t.ad_id
  )
SELECT
  {day:Date} AS day,
  {run_id:UInt64} AS run_id,
  {status:String} AS status,
  creator_id,
  video_id,
  ad_id,
  toUInt64(i) AS impressions,
  toUInt64(before) AS impressions_before,
  toUInt64(before + i) AS impressions_after,
  {rate_card_version:UInt32} AS rate_card_version,
  {pricing_mode:String} AS pricing_mode,
  tenths AS revenue_tenths,
  toUInt64(${wonFromTenthsSql('tenths')}) AS revenue_krw,
  {computed_at:DateTime64(3, 'UTC')} AS computed_at
FROM priced`
}

const VIDEO_HASH = `cityHash64(day, creator_id, video_id, views, watch_ms, ad_impressions, views_before, views_after,
  rate_card_version, toString(pricing_mode), revenue_tenths, revenue_krw)`
const AD_HASH = `cityHash64(day, creator_id, video_id, ad_id, impressions, impressions_before, impressions_after,
  rate_card_version, toString(pricing_mode), revenue_tenths, revenue_krw)`

/**
 * Counts, sums of truncated lines and the checksum of a run's lines, from two row
 * sources (the stored lines of a run, or the line SELECTs themselves for a dry run).
 * The checksum is order-independent (a wrapping sum of row hashes) and leaves out
 * run id, status and time, so a rerun that changes nothing has the same checksum.
 */
export function summarySql(videoSource: string, adSource: string): string {
  return `
SELECT
  v.1 AS video_lines, v.2 AS views, v.3 AS video_revenue_krw,
  a.1 AS ad_lines, a.2 AS ad_impressions, a.3 AS ad_revenue_krw,
  lower(hex(cityHash64(v.1, v.4, a.1, a.4))) AS checksum
FROM
  (SELECT tuple(count(), sum(views), sum(revenue_krw), sum(${VIDEO_HASH})) AS v FROM (${videoSource})) AS vs,
  (SELECT tuple(count(), sum(impressions), sum(revenue_krw), sum(${AD_HASH})) AS a FROM (${adSource})) AS ads`
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
