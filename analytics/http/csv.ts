import type { Context } from 'hono'

function cell(value: unknown): string {
  if (value === null || value === undefined) return ''
  const s = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value)
  // Cells that a spreadsheet would run as a formula are prefixed with a quote (CSV injection).
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s) ? `'${s}` : s
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe
}

/** Renders rows as RFC 4180 CSV with a header row of `columns`. */
export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  const lines = [columns.map(cell).join(',')]
  for (const row of rows) lines.push(columns.map((col) => cell(row[col])).join(','))
  return lines.join('\r\n') + '\r\n'
}

/**
 * Answers a table result: CSV with a header row when `?format=csv`, JSON otherwise
 * (`{ ...meta, rows }`). A page of a listing gives `next` (its cursor, null on the last
 * page): in JSON as `next`, in CSV as a `Link` header (RFC 8288) to the same request with
 * `after` set to it.
 */
export function table<Row extends Record<string, unknown>>(
  c: Context,
  opts: { format?: 'json' | 'csv'; columns: readonly (keyof Row & string)[]; rows: Row[]; meta?: Record<string, unknown>; filename: string; next?: string | null },
): Response {
  if (opts.format === 'csv') {
    const headers: Record<string, string> = {
      'content-type': 'text/csv; charset=utf-8; header=present',
      'content-disposition': `attachment; filename="${opts.filename}.csv"`,
    }
    if (opts.next) {
      const url = new URL(c.req.url)
      url.searchParams.set('after', opts.next)
      headers.link = `<${url.pathname}${url.search}>; rel="next"`
    }
    return c.body(toCsv(opts.columns, opts.rows), 200, headers)
  }
  return c.json(opts.next === undefined ? { ...opts.meta, rows: opts.rows } : { ...opts.meta, rows: opts.rows, next: opts.next })
}
