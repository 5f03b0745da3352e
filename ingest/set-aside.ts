import { Readable } from 'node:stream'
import type { ClickHouseClient } from '../lib/clickhouse.ts'
import type { Logger } from '../lib/log.ts'
import type { Wal } from './wal.ts'
import { insertRawEventFiles, insertRawEvents, RAW_COLUMNS, RAW_INPUT_SETTINGS } from './events/rows.ts'

/**
 * Rows the engine refuses to read. A load is one block: one line ClickHouse cannot parse
 * fails it whole, and retrying the same block fails the same way for ever, so every load
 * behind it waits too (on 4 December an event time of 0 did exactly that) and the edge
 * turns to 503s once its buffer is full. Here such lines are found and set aside (kept on
 * disk, see Wal.setAside) and the rest is inserted under the block's own dedup token.
 *
 * Why that is safe: a block that fails to parse is never written, in part or whole (the
 * insert reads its input into one block before writing, see insertRawEvents), so nothing
 * under its token has landed. A repeat of the whole block (a retry, or the repair after a
 * crash) fails to parse the same way, finds the same lines, and its readable rest, under
 * the same token, is skipped as a duplicate by raw_events and by every view: nothing is
 * counted twice. Lines are judged by reading
 * them into a `null()` table of raw_events' columns with the insert's own input settings,
 * never into the table itself; an error that reading alone does not reproduce (a view's,
 * or the engine being unavailable) sets nothing aside and is retried as before.
 */

/** ClickHouse's errors for input it cannot read as the columns' types. */
const DATA_ERRORS = new Set([
  'ATTEMPT_TO_READ_AFTER_EOF', 'CANNOT_READ_ALL_DATA', 'INCORRECT_DATA', 'INCORRECT_NUMBER_OF_COLUMNS', 'TOO_LARGE_STRING_SIZE',
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE', 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN', 'UNKNOWN_ELEMENT_OF_ENUM', 'ARGUMENT_OUT_OF_BOUND',
  'CANNOT_CONVERT_TYPE', 'UNEXPECTED_END_OF_FILE', 'DECIMAL_OVERFLOW',
])

/** Whether the engine refused the data itself (not the statement, not its own state). */
export function isDataError(err: unknown): boolean {
  const type = typeof err === 'object' && err !== null && 'type' in err ? String(err.type) : ''
  return type.startsWith('CANNOT_PARSE_') || DATA_ERRORS.has(type)
}

/**
 * At most this many lines are set aside from one load: a few bad lines are a bug's trace in
 * otherwise good data; more is a mismatch of schema or format, which an operator must fix,
 * and until then the log keeps everything and loads it once the fix is in (the loader
 * retries; the edge answers 503 once its buffer is full, as with ClickHouse down).
 */
export const MAX_SET_ASIDE = 20
/** Checks per search: enough to find MAX_SET_ASIDE lines among LOAD_MAX_ROWS' largest loads. */
export const MAX_CHECKS = 1_000

/** raw_events' columns with their types, in the rows' order, as a `null()` table's structure. */
async function rawStructure(ch: ClickHouseClient): Promise<string> {
  const rs = await ch.query({
    query: 'SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {table:String}',
    query_params: { table: 'raw_events' },
    format: 'JSONEachRow',
  })
  const types = new Map(((await rs.json()) as { name: string; type: string }[]).map((c) => [c.name, c.type]))
  return RAW_COLUMNS.map((c) => {
    const type = types.get(c)
    if (!type) throw new Error(`raw_events has no column ${c}`)
    return `${c} ${type}`
  }).join(', ')
}

/**
 * Indices of the lines the engine cannot read as raw_events rows, found by halving (a
 * check reads a range into a `null()` table); undefined when it finds none that fails on
 * its own, more than MAX_SET_ASIDE, or would take more than `maxChecks` checks.
 */
export async function unreadableLines(ch: ClickHouseClient, lines: string[], maxChecks = MAX_CHECKS): Promise<number[] | undefined> {
  const structure = await rawStructure(ch)
  let checks = 0
  const reads = async (from: number, to: number): Promise<boolean> => {
    if (++checks > maxChecks) throw new SearchTooLong()
    try {
      const result = await ch.exec({
        query: 'INSERT INTO FUNCTION null({structure:String}) FORMAT TabSeparated',
        query_params: { structure },
        values: Readable.from([lines.slice(from, to).map((l) => `${l}\n`).join('')], { objectMode: true }),
        clickhouse_settings: RAW_INPUT_SETTINGS,
      })
      result.stream.destroy()
      return true
    } catch (err) {
      if (isDataError(err)) return false
      throw err
    }
  }
  const bad: number[] = []
  const search = async (from: number, to: number): Promise<void> => {
    if (await reads(from, to)) return
    if (to - from === 1) {
      bad.push(from)
      if (bad.length > MAX_SET_ASIDE) throw new SearchTooLong()
    } else {
      const mid = (from + to) >>> 1
      await search(from, mid)
      await search(mid, to)
    }
  }
  try {
    await search(0, lines.length)
  } catch (err) {
    if (err instanceof SearchTooLong) return undefined
    throw err
  }
  return bad.length > 0 ? bad : undefined
}

class SearchTooLong extends Error {}

export type SetAside = (token: string, lines: string[], error: string) => Promise<void>

/**
 * Inserts rows' text (see insertRawEvents) under `token`; if the engine cannot read some
 * lines, hands them to `setAside` (which must keep them durably before it resolves) and
 * inserts the rest under the same token. Resolves to the number of lines set aside;
 * rethrows the insert's error when it is not the data's or no line can be blamed.
 * `fruitless`: tokens whose search found nothing to set aside, not searched again (the
 * loader retries such a load every few seconds, and a search reads it many times over).
 * `files`: write-ahead log entries that hold exactly this text, for the engine to read
 * instead (see insertRawEventFiles); the text is then only searched when the engine refuses a
 * line, and its readable rest inserted.
 */
export async function insertOrSetAside(
  ch: ClickHouseClient,
  text: string | string[],
  token: string,
  setAside: SetAside,
  fruitless?: Set<string>,
  files?: readonly string[],
): Promise<number> {
  try {
    if (files) await insertRawEventFiles(ch, files, token)
    else await insertRawEvents(ch, text, token)
    return 0
  } catch (err) {
    if (!isDataError(err) || fruitless?.has(token)) throw err
    const lines = (typeof text === 'string' ? text : text.join('')).split('\n')
    if (lines.at(-1) === '') lines.pop()
    const bad = await unreadableLines(ch, lines)
    if (!bad) {
      fruitless?.add(token)
      throw err
    }
    const out = new Set(bad)
    await setAside(token, bad.map((i) => lines[i]!), err instanceof Error ? err.message : String(err))
    const rest = lines.filter((_, i) => !out.has(i))
    if (rest.length > 0) await insertRawEvents(ch, rest.map((l) => `${l}\n`), token)
    return bad.length
  }
}

/**
 * Set-aside lines kept in the write-ahead log's folder (Wal.setAside), counted and logged
 * as an error: each is an acknowledged event that is not in ClickHouse until an operator
 * loads it (README, Rows ClickHouse cannot read).
 */
export function keepInWal(wal: Pick<Wal, 'setAside'>, log: Logger, counted?: (rows: number) => void): SetAside {
  return async (token, lines, error) => {
    const { file, created } = await wal.setAside(token, lines, error)
    // A retried load sets the same lines aside again (the same file): they are counted once.
    if (created) counted?.(lines.length)
    log.error('ClickHouse cannot read some acknowledged rows: set aside, the rest of their load inserted', {
      token,
      rows: lines.length,
      file,
      // The engine's message dumps the rows it was reading: the file's first line keeps it whole.
      error: error.slice(0, 500),
    })
  }
}

/** Inserts rows' text under a token, setting aside lines the engine cannot read (insertOrSetAside; `files`: the log's entries holding it). */
export type InsertRows = (text: string | string[], token: string, files?: readonly string[]) => Promise<number>

/**
 * insertOrSetAside with one memory of fruitless searches, for everything that loads one
 * write-ahead log (the loader and the repair share it: the repair runs every
 * WAL_REPAIR_INTERVAL_MS and would otherwise search a load it cannot mend each time).
 */
export function insertingRows(ch: ClickHouseClient, setAside: SetAside): InsertRows {
  const fruitless = new Set<string>()
  return (text, token, files) => insertOrSetAside(ch, text, token, setAside, fruitless, files)
}
