import type { ClickHouseClient } from '../../lib/clickhouse.ts'

export type EventRow = {
  type: string
  outcome?: string
  reason?: string
  video_id: string
  creator_id: string
  viewer_id: string
  /** UTC time, `YYYY-MM-DD hh:mm:ss`. */
  at: string
  credited_watch_ms?: number
  ad_id?: string
  session_id?: string
}

/** Inserts playback events straight into raw_events; the aggregates follow synchronously. */
export async function insertEvents(ch: ClickHouseClient, events: EventRow[]): Promise<void> {
  await ch.insert({
    table: 'raw_events',
    values: events.map((e) => ({
      event_id: crypto.randomUUID(),
      received_at: e.at,
      event_time: e.at,
      type: e.type,
      outcome: e.outcome ?? 'counted',
      reason: e.reason ?? '',
      video_id: e.video_id,
      creator_id: e.creator_id,
      viewer_id: e.viewer_id,
      session_id: e.session_id ?? crypto.randomUUID(),
      ip: '10.0.0.1',
      position_ms: 0,
      watched_ms: e.credited_watch_ms ?? 0,
      credited_watch_ms: e.credited_watch_ms ?? 0,
      ad_id: e.ad_id ?? '',
      video_duration_ms: 600_000,
      payload: '',
    })),
    format: 'JSONEachRow',
  })
}

/** A counted play of `video` by each of `viewers` on `day` (UTC), spread over a minute. */
export const playsBy = (video: string, creator: string, day: string, viewers: string[]): EventRow[] =>
  viewers.map((v, i) => ({ type: 'play', video_id: video, creator_id: creator, viewer_id: v, at: `${day} 03:${String(i % 60).padStart(2, '0')}:00` }))

/** The ids `${prefix}${from}` … `${prefix}${to - 1}`. */
export const ids = (prefix: string, from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`)
