import { Readable } from 'node:stream'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import type { Decision } from '../state/decide.ts'
import type { PlaybackClaims } from '../tokens/playback.ts'
import type { PlaybackEvent } from './schema.ts'

/** One row of raw_events, as sent to ClickHouse (JSONEachRow). */
export type RawEventRow = {
  event_id: string
  /** Epoch milliseconds: ClickHouse reads an integer as a DateTime64(3)'s own value, with no date text to build or parse. */
  received_at: number
  event_time: number
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
  /** Set by the writer when the row's flush is formed. */
  insert_token?: string
}

const MAX_PAYLOAD_CHARS = 4096

type Source =
  | { kind: 'event'; event: PlaybackEvent; decision: Decision }
  | { kind: 'invalid'; raw: unknown; reason: string }

/** What every row of one request shares, computed once per request. */
export type RowContext = { base: Omit<RawEventRow, 'event_id' | 'event_time' | 'type' | 'outcome' | 'reason' | 'position_ms' | 'watched_ms' | 'credited_watch_ms' | 'ad_id' | 'payload'>; now: number }

export function rowContext(ctx: { claims: PlaybackClaims; ip: string; now: number }): RowContext {
  const { claims, ip, now } = ctx
  return {
    now,
    base: { received_at: now, video_id: claims.vid, creator_id: claims.cid, viewer_id: claims.sub, session_id: claims.sid, ip, video_duration_ms: claims.dur },
  }
}

/** Builds the raw_events row of an event (or of an invalid item, kept with its payload). */
export function toRow(ctx: RowContext | { claims: PlaybackClaims; ip: string; now: number }, src: Source): RawEventRow {
  const { base, now } = 'base' in ctx ? ctx : rowContext(ctx)
  if (src.kind === 'invalid') {
    const obj = typeof src.raw === 'object' && src.raw !== null ? src.raw : {}
    const type = 'type' in obj && typeof obj.type === 'string' ? obj.type.slice(0, 32) : ''
    return {
      ...base,
      event_id: crypto.randomUUID(),
      event_time: now,
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
    event_time: e.ts,
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

/** Rows as JSONEachRow text, each stamped with the flush's token: made once, logged and inserted as is. */
export function encodeRows(rows: RawEventRow[], token: string): string {
  let out = ''
  for (const r of rows) {
    r.insert_token = token
    out += JSON.stringify(r) + '\n'
  }
  return out
}

/**
 * Inserts rows (or their JSONEachRow text) into raw_events as one block under `token`.
 * The block-size setting keeps a flush in one block, so a repeat with the same token is
 * recognised as a whole.
 */
export async function insertRawEvents(ch: ClickHouseClient, rows: RawEventRow[] | string, token: string): Promise<void> {
  const clickhouse_settings = {
    insert_deduplication_token: token,
    deduplicate_blocks_in_dependent_materialized_views: 1,
    // Above FLUSH_MAX_ROWS' largest value: a flush is never split into blocks.
    max_insert_block_size: '1048576',
  } as const
  if (typeof rows !== 'string') {
    await ch.insert({ table: 'raw_events', values: rows, format: 'JSONEachRow', clickhouse_settings })
    return
  }
  // Already serialised (it is what the write-ahead log holds): sent as the body as is. The
  // stream carries the string itself (object mode): in byte mode it is turned into a Buffer
  // that chDB's connection turns back into a string, two copies of every flush (8 % of the
  // edge's CPU in a profile of bench:ingest).
  const result = await ch.exec({ query: 'INSERT INTO raw_events FORMAT JSONEachRow', values: Readable.from([rows], { objectMode: true }), clickhouse_settings })
  result.stream.destroy()
}
