import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { basename, dirname, isAbsolute, join } from 'node:path'
import { Readable } from 'node:stream'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { BACKGROUND_QUERY_PREFIX } from '../../lib/engine-turns.ts'
import type { Decision } from '../state/decide.ts'
import type { PlaybackClaims } from '../tokens/playback.ts'
import type { PlaybackEvent } from './schema.ts'

/** One row of raw_events, as read back from the log (tests, the repair). */
export type RawEventRow = {
  event_id: string
  /** Epoch milliseconds (the text holds epoch seconds with three decimals: see `time`). */
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
  /** The dedup token of the row's flush. */
  insert_token: string
}

/**
 * The columns of a row's text, in order: the event's own first, then what the whole
 * request shares, then the flush's token (added when the flush is formed).
 */
export const RAW_COLUMNS = [
  'event_id', 'event_time', 'type', 'outcome', 'reason', 'position_ms', 'watched_ms', 'credited_watch_ms', 'ad_id', 'payload',
  'received_at', 'video_id', 'creator_id', 'viewer_id', 'session_id', 'ip', 'video_duration_ms', 'insert_token',
] as const satisfies readonly (keyof RawEventRow)[]
const NUMERIC = new Set<string>(['position_ms', 'watched_ms', 'credited_watch_ms', 'video_duration_ms'])
const TIMES = new Set<string>(['event_time', 'received_at'])
/** The raw insert's head: its data follows (FORMAT) or comes from files (FROM INFILE … FORMAT). */
const INSERT_INTO = `INSERT INTO raw_events (${RAW_COLUMNS.join(', ')})`

const MAX_PAYLOAD_CHARS = 4096

/** TabSeparated escaping: a value never holds a raw tab, newline or backslash. */
const SPECIAL = /[\t\n\r\\\0\b\f\v]/
const SPECIAL_ALL = /[\t\n\r\\\0\b\f\v]/g
const ESCAPE: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\\': '\\\\', '\0': '\\0', '\b': '\\b', '\f': '\\f', '\v': '\\v' }
const UNESCAPE: Record<string, string> = { t: '\t', n: '\n', r: '\r', '\\': '\\', '0': '\0', b: '\b', f: '\f', v: '\v', "'": "'" }
const tsv = (s: string) => (s === '' || !SPECIAL.test(s) ? s : s.replace(SPECIAL_ALL, (c) => ESCAPE[c]!))
const untsv = (s: string) => (s.includes('\\') ? s.replace(/\\(.)/gs, (_, c: string) => UNESCAPE[c] ?? c) : s)

type Source =
  | { kind: 'event'; event: PlaybackEvent; decision: Decision }
  | { kind: 'invalid'; raw: unknown; reason: string }

/** What every row of one request shares, as text, built once per request. */
export type RowContext = { shared: string; now: number }

export function rowContext(ctx: { claims: PlaybackClaims; ip: string; now: number }): RowContext {
  const { claims, ip, now } = ctx
  return { now, shared: `${time(now)}\t${tsv(claims.vid)}\t${tsv(claims.cid)}\t${tsv(claims.sub)}\t${tsv(claims.sid)}\t${tsv(ip)}\t${int(claims.dur)}\t` }
}

/** A finite integer, or 0: a row must always parse, or its whole load would fail. */
const int = (n: number) => (Number.isSafeInteger(n) ? n : 0)

/**
 * Epoch milliseconds as a DateTime64(3)'s text: epoch seconds with three decimals, which the
 * raw insert reads with `date_time_input_format = 'basic'` whatever the value. Rows used to
 * carry the bare integer, read by 'best_effort', which took only 13 digits as milliseconds:
 * 0, 999 or 99999999999 failed the load, and with it every load after it (an event's ts of 0
 * or before 1970 is valid input, rejected as too late and stored). Before 1970 is stored as
 * 1970-01-01 (such a time is only ever that of a rejected event): "-0.5" would read as 0.5.
 */
export function time(ms: number): string {
  const t = Math.max(0, int(ms))
  // Exact for every safe integer: t / 1000 is below 2^44, where doubles are 2^-9 apart or closer,
  // so a quotient just under a whole second (….999) never rounds up to it.
  const s = Math.floor(t / 1000)
  const milli = t - s * 1000
  // The events of a batch share their second: its text is made once (String(t) and two
  // slices an event were ~3 % of the edge's JavaScript thread in a profile).
  if (s !== lastSecond) (lastSecond = s), (lastSecondText = `${s}.`)
  return lastSecondText + MILLIS[milli]
}
/** '000' to '999'. */
const MILLIS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'))
let lastSecond = -1
let lastSecondText = ''

/** A time of a row's text back as epoch milliseconds (also the bare integers of older logs). */
const parseTime = (text: string) => (text.includes('.') ? Math.round(Number(text) * 1000) : Number(text))

/**
 * The raw_events row of an event (or of an invalid item, kept with its payload) as a
 * TabSeparated line without its last value: the flush adds its token (encodeRows).
 * Text, not objects: a row is built once and is what the log holds and the engine
 * parses (TabSeparated is the cheapest text format for both).
 */
export function rowText(ctx: RowContext | { claims: PlaybackClaims; ip: string; now: number }, src: Source): string {
  const { shared, now } = 'shared' in ctx ? ctx : rowContext(ctx)
  if (src.kind === 'invalid') {
    const obj = typeof src.raw === 'object' && src.raw !== null ? src.raw : {}
    const type = 'type' in obj && typeof obj.type === 'string' ? obj.type.slice(0, 32) : ''
    const payload = (JSON.stringify(src.raw) ?? 'undefined').slice(0, MAX_PAYLOAD_CHARS)
    return `${crypto.randomUUID()}\t${time(now)}\t${tsv(type)}\trejected\t${tsv(src.reason)}\t0\t0\t0\t\t${tsv(payload)}\t${shared}`
  }
  const e = src.event
  const d = src.decision
  // The id is a validated UUID, the type one of six names, the outcome one of four words; the rest is escaped.
  const ad = e.type === 'ad_impression' ? tsv(e.ad_id) : ''
  const watched = e.type === 'progress' ? int(e.watched_ms) : 0
  return `${e.id}\t${time(e.ts)}\t${e.type}\t${d.outcome}\t${tsv(d.reason)}\t${int(e.position_ms)}\t${watched}\t${int(d.credited)}\t${ad}\t\t${shared}`
}

/** What encodeRows adds to each row: the flush's token (a UUID, see group-commit.ts) and the end of the line. */
export const ROW_END_CHARS = 37

/** One flush's rows as TabSeparated text, each ended with the flush's token: made once, logged and inserted as is. */
export function encodeRows(rows: string[], token: string): string {
  if (rows.length === 0) return ''
  const tail = `${tsv(token)}\n`
  // One join with an empty last row ends the text with the tail: `join(tail) + tail` made a
  // rope, which the log's write then copied flat again (timed alone in Bun, 8,700 rows:
  // joined and written in 1.16–1.23 ms against 1.94–3.14).
  return rows.concat('').join(tail)
}

/** A line of a flush's text back as a row. */
export function parseRow(line: string): RawEventRow {
  const values = line.split('\t')
  if (values.length !== RAW_COLUMNS.length) throw new Error(`a raw_events line has ${values.length} values, not ${RAW_COLUMNS.length}`)
  const row: Record<string, string | number> = {}
  RAW_COLUMNS.forEach((c, i) => (row[c] = TIMES.has(c) ? parseTime(values[i]!) : NUMERIC.has(c) ? Number(values[i]) : untsv(values[i]!)))
  return row as RawEventRow
}

/** The row of an event as an object (tests). */
export function toRow(ctx: RowContext | { claims: PlaybackClaims; ip: string; now: number }, src: Source, token = ''): RawEventRow {
  return parseRow(encodeRows([rowText(ctx, src)], token).slice(0, -1))
}

/** How the raw insert reads rows' text (also used to judge lines the engine refuses, see set-aside.ts). */
export const RAW_INPUT_SETTINGS = {
  // The times are epoch seconds with decimals (see `time`); older logs' bare 13-digit
  // milliseconds read the same way under 'basic' (checked when this changed).
  date_time_input_format: 'basic',
} as const

/** How a load goes into raw_events: one block under its dedup token, behind the edge's own work. */
function rawLoadSettings(token: string) {
  return {
    ...RAW_INPUT_SETTINGS,
    insert_deduplication_token: token,
    deduplicate_blocks_in_dependent_materialized_views: 1,
    // Above LOAD_MAX_ROWS' largest value: a load is never split into blocks, and a block
    // that fails to parse is never written in part (set-aside.ts relies on it).
    max_insert_block_size: '1048576',
    // Loads run at low priority: the edge's event loop comes first (in bench:ingest, paced,
    // answers were several times faster at the tail with no load running).
    os_thread_priority: '19',
  } as const
}

/**
 * Inserts a flush's text (whole, or in pieces that join into it) into raw_events as one
 * block under `token`. The block-size setting keeps it one block, so a repeat with the
 * same token is recognised as a whole.
 */
export async function insertRawEvents(ch: ClickHouseClient, text: string | string[], token: string): Promise<void> {
  // The stream carries the strings themselves (object mode): in byte mode each is turned
  // into a Buffer that chDB's connection turns back into a string.
  // A load: embedded, it takes its turn after the reads under way (see lib/engine-turns.ts).
  const query_id = `${BACKGROUND_QUERY_PREFIX}${randomUUID()}`
  const result = await ch.exec({ query: `${INSERT_INTO} FORMAT TabSeparated`, query_id, values: Readable.from(typeof text === 'string' ? [text] : text, { objectMode: true }), clickhouse_settings: rawLoadSettings(token) })
  result.stream.destroy()
}

/** Most files one INSERT … FROM INFILE names (a longer list goes as text). */
const MAX_INFILE_FILES = 1_000
/** A folder the engine's INFILE reads as it is: no quote or backslash (the literal), no glob character, no space. */
const PLAIN_DIR = /^[\w./@+=:~-]+$/
const PLAIN_NAME = /^[\w.-]+$/

/**
 * The INFILE pattern that names exactly `files` (absolute paths in one folder, in order), or
 * undefined when the engine could not be given them by name safely (a folder with anything
 * but letters, digits and `_./@+=:~-`, a name with anything but letters, digits and `_.-`,
 * several folders, more than MAX_INFILE_FILES) or one of them is not there: a pattern matches
 * only the files that exist, so a missing one would be skipped, not refused.
 */
export function infilePattern(files: readonly string[]): string | undefined {
  if (files.length === 0 || files.length > MAX_INFILE_FILES) return undefined
  const dir = dirname(files[0]!)
  if (!isAbsolute(dir) || !PLAIN_DIR.test(dir)) return undefined
  const names: string[] = []
  for (const file of files) {
    const name = basename(file)
    if (dirname(file) !== dir || !PLAIN_NAME.test(name) || !existsSync(file)) return undefined
    names.push(name)
  }
  return join(dir, names.length === 1 ? names[0]! : `{${names.join(',')}}`)
}

/**
 * Inserts the rows of write-ahead log entries (ingest/wal.ts: a JSON line, then the entry's
 * rows' text) into raw_events as one block under `token`, the engine reading the files itself
 * (`FROM INFILE`, embedded only: a server's HTTP interface has no such clause), each after its
 * first line: the rows of insertRawEvents with their texts, without a copy of them. The engine
 * keys such a block by the token and the number of files, not as the same rows sent as one
 * text: every insert of one load must go the same way (see WalLoad). Throws when the files
 * cannot be named so (see infilePattern), having done nothing.
 */
export async function insertRawEventFiles(ch: ClickHouseClient, files: readonly string[], token: string): Promise<void> {
  const pattern = infilePattern(files)
  if (pattern === undefined) throw new Error(`the write-ahead log's entries of load ${token} cannot be read by name (a file is missing, or its path has characters INFILE would misread): ${files.join(', ')}`)
  const query_id = `${BACKGROUND_QUERY_PREFIX}${randomUUID()}`
  // The pattern is checked above for quotes and backslashes; INFILE takes no parameter.
  const query = `${INSERT_INTO} FROM INFILE '${pattern}' COMPRESSION 'none' FORMAT TabSeparated`
  await ch.command({ query, query_id, clickhouse_settings: { ...rawLoadSettings(token), input_format_tsv_skip_first_lines: '1' } })
}
