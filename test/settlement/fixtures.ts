import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { rows } from '../harness/engines.ts'

/**
 * Test data for settlement. The job reads only the daily aggregates, so most tests write
 * those directly (a day with a million views is one row); `playEvents` and `adEvents`
 * go through raw_events and its materialized views, for the day boundary and late events.
 */

/** Adds counted views (and optionally watch time and impressions) of a video on a day to video_stats_per_day. */
export async function putViews(ch: ClickHouseClient, r: { day: string; video: string; creator?: string; views: number; watchMs?: number; adImpressions?: number }): Promise<void> {
  await ch.command({
    query: `INSERT INTO video_stats_per_day (day, creator_id, video_id, views, watch_ms, ad_impressions)
      SELECT {day:Date}, {creator:String}, {video:String}, {views:UInt64}, {watch:UInt64}, {ads:UInt64}`,
    query_params: { day: r.day, creator: r.creator ?? `c-${r.video}`, video: r.video, views: r.views, watch: r.watchMs ?? 0, ads: r.adImpressions ?? 0 },
  })
}

/** Adds counted impressions of an ad on a video on a day to ad_impressions_per_day (and to the video's day total). */
export async function putImpressions(ch: ClickHouseClient, r: { day: string; video: string; ad: string; creator?: string; impressions: number }): Promise<void> {
  const creator = r.creator ?? `c-${r.video}`
  await ch.command({
    query: `INSERT INTO ad_impressions_per_day (day, creator_id, video_id, ad_id, impressions) SELECT {day:Date}, {creator:String}, {video:String}, {ad:String}, {n:UInt64}`,
    query_params: { day: r.day, creator, video: r.video, ad: r.ad, n: r.impressions },
  })
  await putViews(ch, { day: r.day, video: r.video, creator, views: 0, adImpressions: r.impressions })
}

/** Many rows of views at once (one INSERT), for generated inputs. */
export async function putViewsBatch(ch: ClickHouseClient, list: Array<{ day: string; video: string; creator: string; views: number }>): Promise<void> {
  await ch.command({
    query: `INSERT INTO video_stats_per_day (day, creator_id, video_id, views)
      SELECT t.1, t.2, t.3, t.4 FROM (SELECT arrayJoin(arrayZip({days:Array(Date)}, {creators:Array(String)}, {videos:Array(String)}, {views:Array(UInt64)})) AS t)`,
    query_params: { days: list.map((r) => r.day), creators: list.map((r) => r.creator), videos: list.map((r) => r.video), views: list.map((r) => r.views) },
  })
}

/** Many rows of ad impressions at once (one INSERT each for the ad and the video tables). */
export async function putImpressionsBatch(ch: ClickHouseClient, list: Array<{ day: string; video: string; ad: string; creator: string; impressions: number }>): Promise<void> {
  const params = { days: list.map((r) => r.day), creators: list.map((r) => r.creator), videos: list.map((r) => r.video), ads: list.map((r) => r.ad), n: list.map((r) => r.impressions) }
  await ch.command({
    query: `INSERT INTO ad_impressions_per_day (day, creator_id, video_id, ad_id, impressions)
      SELECT t.1, t.2, t.3, t.4, t.5 FROM (SELECT arrayJoin(arrayZip({days:Array(Date)}, {creators:Array(String)}, {videos:Array(String)}, {ads:Array(String)}, {n:Array(UInt64)})) AS t)`,
    query_params: params,
  })
  await ch.command({
    query: `INSERT INTO video_stats_per_day (day, creator_id, video_id, ad_impressions)
      SELECT t.1, t.2, t.3, t.5 FROM (SELECT arrayJoin(arrayZip({days:Array(Date)}, {creators:Array(String)}, {videos:Array(String)}, {ads:Array(String)}, {n:Array(UInt64)})) AS t)`,
    query_params: params,
  })
}

/** Inserts `n` counted play events (one viewer each) at the instant `at` into raw_events. */
export async function playEvents(ch: ClickHouseClient, r: { at: string; video: string; creator?: string; n: number; outcome?: string }): Promise<void> {
  await ch.command({
    query: `INSERT INTO raw_events (event_id, received_at, event_time, type, outcome, reason, video_id, creator_id, viewer_id, session_id, ip, position_ms, watched_ms, credited_watch_ms, ad_id, video_duration_ms, payload)
      SELECT generateUUIDv4(number), now64(3), parseDateTime64BestEffort({at:String}, 3, 'UTC'), 'play', {outcome:String}, '', {video:String}, {creator:String},
        concat('viewer-', toString(number)), concat('s-', toString(number)), '10.0.0.1', 0, 0, 0, '', 600000, ''
      FROM numbers({n:UInt64})`,
    query_params: { at: r.at, video: r.video, creator: r.creator ?? `c-${r.video}`, n: r.n, outcome: r.outcome ?? 'counted' },
  })
}

/** Inserts `n` counted impressions of `ad` at the instant `at` into raw_events. */
export async function adEvents(ch: ClickHouseClient, r: { at: string; video: string; ad: string; creator?: string; n: number }): Promise<void> {
  await ch.command({
    query: `INSERT INTO raw_events (event_id, received_at, event_time, type, outcome, reason, video_id, creator_id, viewer_id, session_id, ip, position_ms, watched_ms, credited_watch_ms, ad_id, video_duration_ms, payload)
      SELECT generateUUIDv4(number), now64(3), parseDateTime64BestEffort({at:String}, 3, 'UTC'), 'ad_impression', 'counted', '', {video:String}, {creator:String},
        concat('viewer-', toString(number)), concat('s-', toString(number)), '10.0.0.1', 0, 0, 0, {ad:String}, 600000, ''
      FROM numbers({n:UInt64})`,
    query_params: { at: r.at, video: r.video, ad: r.ad, creator: r.creator ?? `c-${r.video}`, n: r.n },
  })
}

export type VideoLine = {
  day: string
  run_id: string
  status: string
  creator_id: string
  video_id: string
  views: string
  watch_ms: string
  views_before: string
  views_after: string
  rate_card_version: number
  pricing_mode: string
  revenue_tenths: string
  revenue_krw: string
}

/** The visible video lines of a day (its latest committed run), by video. */
export async function videoLines(ch: ClickHouseClient, day: string): Promise<VideoLine[]> {
  return rows<VideoLine>(
    ch,
    `SELECT day, run_id, status, creator_id, video_id, views, watch_ms, views_before, views_after, rate_card_version, pricing_mode, revenue_tenths, revenue_krw
     FROM settlement_video_lines WHERE day = {day:Date} AND run_id IN (SELECT run_id FROM settlement_days WHERE day = {day:Date}) ORDER BY video_id`,
    { day },
  )
}

export type AdLine = { day: string; run_id: string; video_id: string; ad_id: string; impressions: string; impressions_before: string; impressions_after: string; revenue_tenths: string; revenue_krw: string }

/** The visible ad lines of a day, by video and ad. */
export async function adLines(ch: ClickHouseClient, day: string): Promise<AdLine[]> {
  return rows<AdLine>(
    ch,
    `SELECT day, run_id, video_id, ad_id, impressions, impressions_before, impressions_after, revenue_tenths, revenue_krw
     FROM settlement_ad_lines WHERE day = {day:Date} AND run_id IN (SELECT run_id FROM settlement_days WHERE day = {day:Date}) ORDER BY video_id, ad_id`,
    { day },
  )
}

/** Every visible line of a day with run id and time left out: what must not change across reruns. */
export async function lineContents(ch: ClickHouseClient, day: string): Promise<unknown[]> {
  const v = (await videoLines(ch, day)).map(({ run_id: _r, ...rest }) => rest)
  const a = (await adLines(ch, day)).map(({ run_id: _r, ...rest }) => rest)
  return [...v, ...a]
}

/** A fixed clock at an ISO instant. */
export const clockAt = (iso: string) => () => new Date(iso)
