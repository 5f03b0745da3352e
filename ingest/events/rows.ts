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

/** What every row of one request shares, as JSON members, built once per request. */
export type RowContext = { shared: string; now: number }

export function rowContext(ctx: { claims: PlaybackClaims; ip: string; now: number }): RowContext {
  const { claims, ip, now } = ctx
  const str = JSON.stringify
  return {
    now,
    shared:
      `"received_at":${now},"video_id":${str(claims.vid)},"creator_id":${str(claims.cid)},"viewer_id":${str(claims.sub)},` +
      `"session_id":${str(claims.sid)},"ip":${str(ip)},"video_duration_ms":${claims.dur}`,
  }
}

/** A finite integer, or 0: a row must always be valid JSON, or its whole load would fail. */
const int = (n: number) => (Number.isSafeInteger(n) ? n : 0)

/**
 * The raw_events row of an event (or of an invalid item, kept with its payload) as
 * JSON text left open at the end: the flush closes it with its token (encodeRows).
 * Built as text straight away, with no row object to build and serialise per event
 * (a fifth of the edge's CPU went to that in a profile of bench:ingest).
 */
export function rowText(ctx: RowContext | { claims: PlaybackClaims; ip: string; now: number }, src: Source): string {
  const { shared, now } = 'shared' in ctx ? ctx : rowContext(ctx)
  const str = JSON.stringify
  if (src.kind === 'invalid') {
    const obj = typeof src.raw === 'object' && src.raw !== null ? src.raw : {}
    const type = 'type' in obj && typeof obj.type === 'string' ? obj.type.slice(0, 32) : ''
    const payload = (JSON.stringify(src.raw) ?? 'undefined').slice(0, MAX_PAYLOAD_CHARS)
    return (
      `{"event_id":"${crypto.randomUUID()}","event_time":${now},"type":${str(type)},"outcome":"rejected","reason":${str(src.reason)},` +
      `"position_ms":0,"watched_ms":0,"credited_watch_ms":0,"ad_id":"","payload":${str(payload)},${shared}`
    )
  }
  const e = src.event
  const d = src.decision
  // The id is a validated UUID and the type one of six names; the rest is escaped.
  return (
    `{"event_id":"${e.id}","event_time":${int(e.ts)},"type":"${e.type}","outcome":${str(d.outcome)},"reason":${str(d.reason)},` +
    `"position_ms":${int(e.position_ms)},"watched_ms":${e.type === 'progress' ? int(e.watched_ms) : 0},"credited_watch_ms":${int(d.credited)},` +
    `"ad_id":${e.type === 'ad_impression' ? str(e.ad_id) : '""'},"payload":"",${shared}`
  )
}

/** The row of an event as an object (tests, and rows read back from the log). */
export function toRow(ctx: RowContext | { claims: PlaybackClaims; ip: string; now: number }, src: Source): RawEventRow {
  return JSON.parse(`${rowText(ctx, src)}}`) as RawEventRow
}

/** One flush's rows as JSONEachRow text, each closed with the flush's token: made once, logged and inserted as is. */
export function encodeRows(rows: string[], token: string): string {
  if (rows.length === 0) return ''
  const tail = `,"insert_token":${JSON.stringify(token)}}\n`
  return rows.join(tail) + tail
}

/**
 * Inserts rows (or their JSONEachRow text, whole or in pieces) into raw_events as one block under `token`.
 * The block-size setting keeps a flush in one block, so a repeat with the same token is
 * recognised as a whole.
 */
export async function insertRawEvents(ch: ClickHouseClient, rows: RawEventRow[] | string | string[], token: string): Promise<void> {
  const clickhouse_settings = {
    insert_deduplication_token: token,
    deduplicate_blocks_in_dependent_materialized_views: 1,
    // Above FLUSH_MAX_ROWS' largest value: a flush is never split into blocks.
    max_insert_block_size: '1048576',
    // Loads run at low priority: the edge's event loop comes first (in bench:ingest, paced,
    // answers were several times faster at the tail with no load running).
    os_thread_priority: '19',
  } as const
  if (typeof rows !== 'string' && typeof rows[0] !== 'string') {
    await ch.insert({ table: 'raw_events', values: rows as RawEventRow[], format: 'JSONEachRow', clickhouse_settings })
    return
  }
  // Already serialised (it is what the write-ahead log holds): sent as the body as is. The
  // stream carries the string itself (object mode): in byte mode it is turned into a Buffer
  // that chDB's connection turns back into a string, two copies of every flush (8 % of the
  // edge's CPU in a profile of bench:ingest).
  const result = await ch.exec({ query: 'INSERT INTO raw_events FORMAT JSONEachRow', values: Readable.from(typeof rows === 'string' ? [rows] : (rows as string[]), { objectMode: true }), clickhouse_settings })
  result.stream.destroy()
}
