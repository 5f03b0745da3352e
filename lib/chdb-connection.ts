import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { createChdbConnection } from 'chdb/connection'
import { BACKGROUND_QUERY_PREFIX, engineTurns } from './engine-turns.ts'
import { writeAll, writeAllText } from './write-all.ts'

/**
 * chDB's connection for `@clickhouse/client`, with one fix: chdb 3.4 applies a
 * call's `clickhouse_settings` as session-wide `SET` statements, so they outlive
 * the call (a `readonly = 1` for one query makes the whole engine read-only; a
 * dedup token sticks to later inserts). Here they become the statement's own
 * `SETTINGS` clause, which ClickHouse scopes to that statement, as the HTTP
 * interface does.
 *
 * And one change of path: an `INSERT … FORMAT x` with its data beside it (`exec` with
 * values, `insert`) has its data written to a file and read back by the engine with
 * `FROM INFILE`, instead of appended to the statement's text. Measured in one process
 * (200,000 edge rows in blocks of 20,000, 3 December): into a Null table 1.7–1.9 µs of
 * CPU a row from a file against 5.2–5.9 µs from the statement's text; into raw_events
 * with its views 8.7–9.1 against 11.4–11.5.
 */
type Inner = ReturnType<typeof createChdbConnection>
/**
 * One statement as the engine ran it: a load (a background statement: the edge's events, the
 * settlement's lines) or a read (anything else), how long it waited for its turn (a load's
 * turn, see engine-turns.ts, then the statements sent before it: see oneAtATime) and how long
 * it then took.
 */
export type StatementTiming = { kind: 'read' | 'load'; queryId?: string; statement: string; waitedMs: number; ms: number }
type Settings = Record<string, unknown> | undefined

/** Settings the client sends that mean something only to an HTTP server. */
const HTTP_ONLY = new Set(['wait_end_of_query', 'send_progress_in_http_headers', 'http_headers_progress_interval_ms', 'enable_http_compression'])

function settingsClause(settings: Settings): { clause: string; passThrough: Record<string, unknown> } {
  const parts: string[] = []
  const passThrough: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(settings ?? {})) {
    if (v === undefined || HTTP_ONLY.has(k)) continue
    // chdb maps default_format onto its own output-format option.
    if (k === 'default_format') {
      passThrough[k] = v
      continue
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid setting name ${JSON.stringify(k)}`)
    if (typeof v === 'number') parts.push(`${k} = ${v}`)
    else if (typeof v === 'boolean') parts.push(`${k} = ${v ? 1 : 0}`)
    else parts.push(`${k} = '${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
  }
  return { clause: parts.length ? `SETTINGS ${parts.join(', ')}` : '', passThrough }
}

/**
 * Puts the clause where ClickHouse reads it as the statement's settings: before the
 * data of `INSERT … VALUES` / `INSERT … FORMAT x`, before a trailing `FORMAT x`, or at the end
 * (a `SYSTEM` statement is left as it is).
 */
function withSettings(sql: string, clause: string): string {
  // SYSTEM statements take no SETTINGS clause, and none of the client's settings applies to them.
  if (!clause || /^\s*SYSTEM\b/i.test(sql)) return sql
  const insert = /^(\s*INSERT\s+INTO\s+[\s\S]*?)(\s+(?:VALUES|FORMAT\s+\w+)\b[\s\S]*)$/i.exec(sql)
  if (insert && !/\bSELECT\b/i.test(insert[1]!)) return `${insert[1]} ${clause}${insert[2]}`
  const m = /^([\s\S]*?)(\s+FORMAT\s+\w+\s*)$/i.exec(sql)
  const [body, format] = m ? [m[1]!, m[2]!] : [sql.replace(/[\s;]+$/, ''), '']
  // A statement ending in its own SETTINGS clause gets ours appended to it (one clause only).
  if (/\bSETTINGS\s+\w+\s*=\s*(?:'(?:[^'\\]|\\.)*'|[\w.-]+)(?:\s*,\s*\w+\s*=\s*(?:'(?:[^'\\]|\\.)*'|[\w.-]+))*\s*$/i.test(body) && !/^\s*CREATE\b/i.test(body))
    return `${body}, ${clause.slice('SETTINGS '.length)}${format}`
  return `${body} ${clause}${format}`
}

/** `INSERT INTO t [(columns)] FORMAT x`, with nothing else: its data can come from a file. */
const INSERT_FORMAT = /^(\s*INSERT\s+INTO\s+[\s\S]*?)(\s+FORMAT\s+\w+\s*)$/i
const PLAIN_HEAD = /\b(?:SELECT|VALUES|SETTINGS|INFILE)\b/i

/** The folder an insert's data is written to, under the engine's own: one process owns both. */
export const INSERTS_DIR = 'tmp_inserts'

type Values = string | Buffer | Uint8Array | Readable | AsyncIterable<unknown> | Iterable<unknown>

/** Writes an insert's data to `file` chunk by chunk (no joined copy); returns the bytes written. */
async function writeValues(file: string, values: Values): Promise<number> {
  const fd = openSync(file, 'w', 0o600)
  let bytes = 0
  const put = (chunk: unknown) => {
    if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) throw new Error(`unsupported insert chunk type: ${typeof chunk}`)
    if (typeof chunk === 'string') bytes += writeAllText(fd, chunk)
    else {
      writeAll(fd, chunk)
      bytes += chunk.length
    }
  }
  try {
    if (typeof values === 'string' || values instanceof Uint8Array) put(values)
    else if (Symbol.asyncIterator in values) for await (const chunk of values as AsyncIterable<unknown>) put(chunk)
    else for (const chunk of values as Iterable<unknown>) put(chunk)
  } finally {
    closeSync(fd)
  }
  return bytes
}

/**
 * Loads (statements whose query_id starts with BACKGROUND_QUERY_PREFIX) take their turn in
 * the engine after the reads under way (see engine-turns.ts): at most 200 ms later, less than
 * half the loader's interval, after 2 ms without a read.
 */
const TURNS = { quietMs: 2, maxWaitMs: 200 }

export function createScopedChdbConnection(path: string) {
  const inner: Inner = createChdbConnection({ path })
  const turns = engineTurns(TURNS)
  const observers = new Set<(timing: StatementTiming) => void>()
  /**
   * chDB runs one statement at a time, and a statement sent while another runs waits for it
   * in a thread of the runtime's shared pool (two under Bun), the pool that also runs
   * WebCrypto (the playback token's check) and asynchronous file calls: two statements in
   * flight held both threads, and a token check waited 3.9 s behind three 2 s statements
   * (test/bench/HISTORY.md, 7 December). So statements wait here instead, in the order they
   * were sent, and at most one pool thread is the engine's.
   */
  let last: Promise<unknown> = Promise.resolve()
  const oneAtATime = <R>(run: () => Promise<R>): Promise<R> => {
    const mine = last.then(run, run)
    last = mine.catch(() => {})
    return mine
  }
  const turn = <R>(p: { query: string; query_id?: string }, run: () => Promise<R>): Promise<R> => {
    const kind = p.query_id?.startsWith(BACKGROUND_QUERY_PREFIX) ? 'load' : 'read'
    const asked = performance.now()
    const timed = () => oneAtATime(async () => {
      const started = performance.now()
      try {
        return await run()
      } finally {
        const timing: StatementTiming = { kind, queryId: p.query_id, statement: p.query, waitedMs: started - asked, ms: performance.now() - started }
        for (const observe of observers) {
          try {
            observe(timing)
          } catch {
            // A watcher's failure is not the statement's.
          }
        }
      }
    })
    return kind === 'load' ? turns.background(timed) : turns.read(timed)
  }
  const insertsDir = join(path, INSERTS_DIR)
  // Left by a process that died mid-insert: nothing reads them (the write-ahead log keeps the rows).
  rmSync(insertsDir, { recursive: true, force: true })
  mkdirSync(insertsDir, { recursive: true })
  const rewrite = <P extends { query: string; clickhouse_settings?: Settings }>(params: P): P => {
    const { clause, passThrough } = settingsClause(params.clickhouse_settings)
    return { ...params, query: withSettings(params.query, clause), clickhouse_settings: passThrough }
  }
  /**
   * Runs an insert with its data read from a file (see above), or as chdb does when the
   * statement is not a plain `INSERT … FORMAT x` or carries no data. An empty body goes
   * chdb's way too, which answers it as a no-op rather than "No data to insert".
   */
  const fromFile = async <P extends { query: string; values?: unknown; clickhouse_settings?: Settings }, R>(params: P, run: (p: P) => Promise<R>): Promise<R> => {
    const m = INSERT_FORMAT.exec(params.query)
    const file = join(insertsDir, `${crypto.randomUUID()}.data`)
    if (params.values === undefined || params.values === null || !m || PLAIN_HEAD.test(m[1]!) || /['\\]/.test(file)) return run(rewrite(params))
    try {
      if ((await writeValues(file, params.values as Values)) === 0) return await run(rewrite({ ...params, values: '' }))
      // The file's name is ours (the engine's folder, checked above for quotes, and a random UUID).
      const query = `${m[1]} FROM INFILE '${file}' COMPRESSION 'none'${m[2]}`
      return await run(rewrite({ ...params, query, values: undefined }))
    } finally {
      rmSync(file, { force: true })
    }
  }
  return {
    ping: (p: Parameters<Inner['ping']>[0]) => inner.ping(p),
    query: (p: Parameters<Inner['query']>[0]) => turn(p, () => inner.query(rewrite(p))),
    command: (p: Parameters<Inner['command']>[0]) => turn(p, () => inner.command(rewrite(p))),
    exec: (p: Parameters<Inner['exec']>[0]) => fromFile(p, (q) => turn(q, () => inner.exec(q))),
    insert: (p: Parameters<Inner['insert']>[0]) =>
      fromFile(p, (q) => turn(q, () => (q.values === undefined ? inner.command(q) : inner.insert(q)))) as ReturnType<Inner['insert']>,
    close: () => inner.close(),
    /** The engine's turns between reads and loads (see engine-turns.ts). */
    turns,
    /** Calls `fn` after each statement with what it took, until the returned function is called. */
    watch(fn: (timing: StatementTiming) => void): () => void {
      observers.add(fn)
      return () => observers.delete(fn)
    },
  }
}
