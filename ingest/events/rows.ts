import type { Decision } from '../state/decide.ts'
import type { PlaybackClaims } from '../tokens/playback.ts'
import type { PlaybackEvent } from './schema.ts'

/** One row of raw_events, as sent to ClickHouse (JSONEachRow). */
export type RawEventRow = {
  event_id: string
  received_at: string
  event_time: string
  type: string
  outcome: string
  reason: string
  video_id: string
  creator_id: string
  viewer_id: string
  session_id: string
  ip: string
  position_ms: number
  watched_ms: number
  credited_watch_ms: number
  ad_id: string
  video_duration_ms: number
  payload: string
}

const MAX_PAYLOAD_CHARS = 4096
const iso = (ms: number) => new Date(ms).toISOString()

type Source =
  | { kind: 'event'; event: PlaybackEvent; decision: Decision }
  | { kind: 'invalid'; raw: unknown; reason: string }

/** Builds the raw_events row of an event (or of an invalid item, kept with its payload). */
export function toRow(ctx: { claims: PlaybackClaims; ip: string; now: number }, src: Source): RawEventRow {
  const { claims, ip, now } = ctx
  const base = {
    received_at: iso(now),
    video_id: claims.vid,
    creator_id: claims.cid,
    viewer_id: claims.sub,
    session_id: claims.sid,
    ip,
    video_duration_ms: claims.dur,
  }
  if (src.kind === 'invalid') {
    const obj = typeof src.raw === 'object' && src.raw !== null ? src.raw : {}
    const type = 'type' in obj && typeof obj.type === 'string' ? obj.type.slice(0, 32) : ''
    return {
      ...base,
      event_id: crypto.randomUUID(),
      event_time: iso(now),
      type,
      outcome: 'rejected',
      reason: src.reason,
      position_ms: 0,
      watched_ms: 0,
      credited_watch_ms: 0,
      ad_id: '',
      payload: (JSON.stringify(src.raw) ?? 'undefined').slice(0, MAX_PAYLOAD_CHARS),
    }
  }
  const e = src.event
  return {
    ...base,
    event_id: e.id,
    event_time: iso(e.ts),
    type: e.type,
    outcome: src.decision.outcome,
    reason: src.decision.reason,
    position_ms: e.position_ms,
    watched_ms: e.type === 'progress' ? e.watched_ms : 0,
    credited_watch_ms: src.decision.credited,
    ad_id: e.type === 'ad_impression' ? e.ad_id : '',
    payload: '',
  }
}
