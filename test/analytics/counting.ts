import type { ClickHouseClient } from '../../lib/clickhouse.ts'

/**
 * Counts the engine's queries by kind: stats reads, reads of the keys parts hold, lists of parts
 * (`query`, and `exec` for the reads in RowBinary; not the viewer sets' reads of part states).
 */
export function countingQueries(inner: ClickHouseClient) {
  const calls = { stats: 0, keys: 0, parts: 0 }
  /** The first day the last stats read asked for. */
  const last = { from: '' }
  const count = (params: { query: string; query_params?: Record<string, unknown> }) => {
    const text = params.query
    if (text.includes('{needs:')) return // a viewer set's states of parts (see partStates)
    if (text.includes('system.parts')) calls.parts++
    else if (/WHERE _part IN \{parts/.test(text)) calls.keys++
    else {
      calls.stats++
      last.from = String((params.query_params as { from?: string }).from)
    }
  }
  const client = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (params: Parameters<ClickHouseClient['query']>[0]) => {
          count(params)
          return target.query(params)
        }
      if (prop === 'exec')
        return (params: Parameters<ClickHouseClient['exec']>[0]) => {
          count(params)
          return target.exec(params)
        }
      return Reflect.get(target, prop, receiver)
    },
  })
  return { client, calls, last }
}
