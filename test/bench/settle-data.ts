/**
 * The generated day of bench:settle, as SQL: `INSERT … SELECT` from numbers() through
 * raw_events and its materialized views, Zipf-distributed over the videos, plus the
 * lifetime counts of earlier (folded) days for the most popular videos, so that the
 * day takes some of them across rate-card tiers. Also the naive settlement (straight
 * from the raw events) and the tier arithmetic shared with the MariaDB peer.
 */
import { userIdFor } from '../../analytics/users/store.ts'

/** The creator of every video whose rank % creators = 0 (v0 among them): bench:api logs in as them. */
export const BENCH_CREATOR_SUBJECT = 'bench-creator'
export const benchCreatorId = () => userIdFor('dev', BENCH_CREATOR_SUBJECT)

/**
 * bench:api's session starts: anonymous viewers coming back, start i from device
 * returningDevice(i) on the top video i % 1,000. Every other device (the even ones) has a
 * stored position on its video (api-prepare.ts writes them), as a viewer resuming a video.
 */
export const RETURNING_DEVICES = 50_000
export const returningDevice = (i: number) => `d_${String(i % RETURNING_DEVICES).padStart(22, '0')}`

/** The Seoul day the benchmark settles and its UTC bounds. */
export function dayBounds(day: string): { from: string; to: string; previous: string } {
  const start = new Date(`${day}T00:00:00+09:00`)
  const iso = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '')
  const prev = new Date(start.getTime() - 86_400_000 + 9 * 3_600_000).toISOString().slice(0, 10)
  return { from: iso(start), to: iso(new Date(start.getTime() + 86_400_000)), previous: prev }
}

/**
 * Video rank of event `number`: log-uniform over 1..videos, i.e. Zipf with s = 1
 * (P(rank ≤ k) = ln k / ln videos ≈ H(k) / H(videos)), rank 0 the most watched.
 */
const rank = `toUInt64(floor(pow({videos:Float64}, cityHash64(number, 1) / 18446744073709551616.0))) - 1`

/**
 * One day of events: 10 % play (90 % counted, the rest excluded as duplicate viewer or
 * self-view), 5 % ad impressions, 5 % pause, 80 % progress of one second.
 * Parameters: n UInt64, videos Float64, creators UInt64, creator0 String, from String (UTC start of the day).
 */
export const generateDaySql = `
INSERT INTO raw_events (event_id, received_at, event_time, type, outcome, reason, video_id, creator_id, viewer_id, session_id, ip,
  position_ms, watched_ms, credited_watch_ms, ad_id, video_duration_ms, payload, insert_token)
SELECT
  generateUUIDv4(number) AS event_id,
  event_time + toIntervalSecond(1) AS received_at,
  toDateTime64({from:String}, 3, 'UTC') + toIntervalMillisecond(cityHash64(number, 2) % 86400000) AS event_time,
  multiIf(k < 10, 'play', k < 15, 'ad_impression', k < 20, 'pause', 'progress') AS type,
  multiIf(k < 9, 'counted', k = 9, 'excluded', k < 15, 'counted', k < 20, 'stored', 'counted') AS outcome,
  multiIf(k = 9 AND h % 2 = 0, 'duplicate_viewer', k = 9, 'self_view', '') AS reason,
  concat('v', toString(r)) AS video_id,
  if(r % {creators:UInt64} = 0, {creator0:String}, concat('c', toString(r % {creators:UInt64}))) AS creator_id,
  concat('u', toString(h % 20000000)) AS viewer_id,
  concat('s', toString(intDiv(number, 30))) AS session_id,
  IPv4NumToString(toUInt32(167772160 + h % 16777216)) AS ip,
  (number % 30) * 1000 AS position_ms,
  if(type = 'progress', 1000, 0) AS watched_ms,
  if(type = 'progress', 1000, 0) AS credited_watch_ms,
  if(type = 'ad_impression', concat('ad-', toString(r % 50)), '') AS ad_id,
  3600000 AS video_duration_ms,
  '' AS payload,
  '' AS insert_token
FROM (SELECT number, ${rank} AS r, number % 100 AS k, cityHash64(number, 3) AS h FROM numbers({n:UInt64}))`

/** Lifetime views and impressions before the day, for the `history` most popular videos (as folded final days leave them). */
export const seedVideoCumulativeSql = `
INSERT INTO settlement_video_cumulative (video_id, day, views_after)
SELECT concat('v', toString(number)), toDate({previous:String}),
  -- The 100 most watched sit just below a tier floor (by half their expected views of the day), so the day takes them across it.
  if(number < 100,
     toUInt64(greatest(0, [100000, 500000, 1000000][number % 3 + 1] - {n:UInt64} * 0.09 * log((number + 2) / (number + 1)) / log({videos:Float64}) / 2)),
     toUInt64(intDiv({top:UInt64}, number + 1)))
FROM numbers({history:UInt64})`
export const seedAdCumulativeSql = `
INSERT INTO settlement_ad_cumulative (video_id, ad_id, day, impressions_after)
SELECT concat('v', toString(number)), concat('ad-', toString(number % 50)), toDate({previous:String}), toUInt64(intDiv({top:UInt64}, 2 * (number + 1))) FROM numbers({history:UInt64})`

/**
 * Graduated price in tenths of `units` taking a lifetime count from `before` to
 * `before + units`; plain SQL that ClickHouse and MariaDB both read (LEAST/GREATEST).
 */
export function tierSql(before: string, units: string, floors: number[], rates: number[]): string {
  return floors
    .map((lo, i) => {
      const hi = floors[i + 1]
      const clamp = (n: string) => (hi === undefined ? `GREATEST(${n}, ${lo})` : `GREATEST(LEAST(${n}, ${hi}), ${lo})`)
      return `${rates[i]} * (${clamp(`(${before} + ${units})`)} - ${clamp(before)})`
    })
    .join(' + ')
}

export type Card = { floors: number[]; videoRates: number[]; adRates: number[] }

/** The day's video and ad revenue computed straight from raw_events (no aggregates). */
export function naiveSettlementSql(card: Card): string {
  return `
SELECT v.lines AS video_lines, v.views AS views, v.krw AS video_revenue_krw, a.lines AS ad_lines, a.impressions AS ad_impressions, a.krw AS ad_revenue_krw
FROM
(SELECT count() AS lines, sum(units) AS views, sum(intDiv(${tierSql('before', 'units', card.floors, card.videoRates)}, 10)) AS krw
 FROM (SELECT video_id, countIf(type = 'play' AND outcome = 'counted') AS units FROM raw_events
       WHERE event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')} GROUP BY video_id HAVING units > 0) AS d
 LEFT JOIN (SELECT video_id, max(views_after) AS before FROM settlement_video_cumulative GROUP BY video_id) AS c USING (video_id)) AS v,
(SELECT count() AS lines, sum(units) AS impressions, sum(intDiv(${tierSql('before', 'units', card.floors, card.adRates)}, 10)) AS krw
 FROM (SELECT video_id, ad_id, count() AS units FROM raw_events
       WHERE event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')} AND type = 'ad_impression' AND outcome = 'counted'
       GROUP BY video_id, ad_id) AS d
 LEFT JOIN (SELECT video_id, ad_id, max(impressions_after) AS before FROM settlement_ad_cumulative GROUP BY video_id, ad_id) AS c USING (video_id, ad_id)) AS a`
}

/** The floor: one pass over the raw columns a settlement reads. */
export const fullScanSql = `SELECT count() AS n FROM raw_events WHERE NOT ignore(video_id, creator_id, type, outcome, ad_id, event_time)`
