/**
 * Every instant the API answers with is RFC 3339 in UTC with milliseconds
 * ('2026-12-06T22:17:48.475Z'), as `Date.prototype.toISOString` writes it. ClickHouse's JSON
 * formats give a DateTime64 column as its text ('2026-12-06 22:17:48.475'): the tables' time
 * columns are all in UTC, but the text says so nowhere, and `new Date()` in a browser reads it
 * as local time. Until 6 December videos, ads, users and settlement runs were answered so.
 *
 * @example
 * apiInstant('2026-12-06 22:17:48.475') // '2026-12-06T22:17:48.475Z'
 * apiInstant('2026-12-06T22:17:48.475Z') // unchanged
 */
export function apiInstant(text: string): string {
  // A DateTime64 column's text is in the column's zone, UTC here (every table's `DateTime64(3, 'UTC')`).
  const iso = CLICKHOUSE_TEXT.test(text) ? `${text.replace(' ', 'T')}Z` : text
  const ms = RFC_3339_UTC.test(iso) ? Date.parse(iso) : NaN
  if (!Number.isFinite(ms)) throw new Error(`not an instant in UTC: ${JSON.stringify(text)}`)
  return new Date(ms).toISOString()
}

const CLICKHOUSE_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,3})?$/
const RFC_3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/
