/**
 * A first line of defence in front of the read-only engine session: one statement,
 * a read statement, no FORMAT-free surprises. The engine's `readonly = 1` is what
 * actually enforces read-only; this gives clear errors and catches what readonly
 * does not cover (several statements in one request, INTO OUTFILE).
 */

const READ_STATEMENTS = new Set(['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN', 'EXISTS', '('])

export type GuardResult = { ok: true; format?: string; query: string } | { ok: false; reason: string }

/**
 * Replaces string literals, quoted identifiers and comments by blanks of the same
 * shape, so keywords and semicolons can be found in what remains. Returns undefined
 * for an unterminated literal or comment.
 */
export function maskLiterals(sql: string): string | undefined {
  let out = ''
  let i = 0
  while (i < sql.length) {
    const ch = sql[i]!
    const next = sql[i + 1]
    if (ch === "'" || ch === '"' || ch === '`') {
      let j = i + 1
      for (;;) {
        if (j >= sql.length) return undefined
        if (sql[j] === '\\') j += 2
        else if (sql[j] === ch && sql[j + 1] === ch) j += 2
        else if (sql[j] === ch) break
        else j++
      }
      out += ch === "'" ? `'${' '.repeat(j - i - 1)}'` : 'x'.repeat(j - i + 1)
      i = j + 1
    } else if (ch === '-' && next === '-') {
      // `#` comments are not recognised here on purpose: stricter than the engine is safe, laxer is not.
      let j = i
      while (j < sql.length && sql[j] !== '\n') j++
      out += ' '.repeat(j - i)
      i = j
    } else if (ch === '/' && next === '*') {
      // Block comments nest in ClickHouse.
      let depth = 1
      let j = i + 2
      while (depth > 0) {
        if (j >= sql.length) return undefined
        if (sql[j] === '/' && sql[j + 1] === '*') (depth++, (j += 2))
        else if (sql[j] === '*' && sql[j + 1] === '/') (depth--, (j += 2))
        else j++
      }
      out += ' '.repeat(j - i)
      i = j
    } else {
      out += ch
      i++
    }
  }
  return out
}

/**
 * Checks that `sql` is one read statement and finds its FORMAT clause. Returns the
 * statement without a trailing semicolon.
 *
 * @example
 * checkReadOnlySql('SELECT 1 FORMAT JSON') // { ok: true, format: 'JSON', query: 'SELECT 1 FORMAT JSON' }
 * checkReadOnlySql('SELECT 1; DROP TABLE t') // { ok: false, reason: 'only one statement per request' }
 */
export function checkReadOnlySql(sql: string): GuardResult {
  const masked = maskLiterals(sql)
  if (masked === undefined) return { ok: false, reason: 'unterminated string, quoted identifier or comment' }
  const end = masked.trimEnd()
  let cut = end.length
  while (cut > 0 && (masked[cut - 1] === ';' || /\s/.test(masked[cut - 1]!))) cut--
  const body = masked.slice(0, cut)
  if (body.trim() === '') return { ok: false, reason: 'empty query' }
  if (body.includes(';')) return { ok: false, reason: 'only one statement per request: multi-statements are refused' }
  const first = /^\s*(\(|[A-Za-z]+)/.exec(body)?.[1]?.toUpperCase()
  if (!first || !READ_STATEMENTS.has(first)) return { ok: false, reason: `only read queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) are allowed; ${first ?? 'this statement'} is refused` }
  if (/\bINTO\s+OUTFILE\b/i.test(body)) return { ok: false, reason: 'INTO OUTFILE is refused' }
  const format = /\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*$/i.exec(body)?.[1]
  return { ok: true, format, query: sql.slice(0, cut) }
}
