import { createChdbConnection } from 'chdb/connection'

/**
 * chDB's connection for `@clickhouse/client`, with one fix: chdb 3.4 applies a
 * call's `clickhouse_settings` as session-wide `SET` statements, so they outlive
 * the call (a `readonly = 1` for one query makes the whole engine read-only; a
 * dedup token sticks to later inserts). Here they become the statement's own
 * `SETTINGS` clause, which ClickHouse scopes to that statement, as the HTTP
 * interface does.
 */
type Inner = ReturnType<typeof createChdbConnection>
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

export function createScopedChdbConnection(path: string) {
  const inner: Inner = createChdbConnection({ path })
  const rewrite = <P extends { query: string; clickhouse_settings?: Settings }>(params: P): P => {
    const { clause, passThrough } = settingsClause(params.clickhouse_settings)
    return { ...params, query: withSettings(params.query, clause), clickhouse_settings: passThrough }
  }
  return {
    ping: (p: Parameters<Inner['ping']>[0]) => inner.ping(p),
    query: (p: Parameters<Inner['query']>[0]) => inner.query(rewrite(p)),
    command: (p: Parameters<Inner['command']>[0]) => inner.command(rewrite(p)),
    exec: (p: Parameters<Inner['exec']>[0]) => inner.exec(rewrite(p)),
    insert: (p: Parameters<Inner['insert']>[0]) => inner.insert(rewrite(p)),
    close: () => inner.close(),
  }
}
