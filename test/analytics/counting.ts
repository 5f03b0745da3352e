import type { ClickHouseClient } from '../../lib/clickhouse.ts'

/** Counts the engine's queries by kind: stats reads, reads of the keys parts hold, lists of parts. */
export function countingQueries(inner: ClickHouseClient) {
  const calls = { stats: 0, keys: 0, parts: 0 }
  /** The first day the last stats read asked for. */
  const last = { from: '' }
  const client = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (params: Parameters<ClickHouseClient['query']>[0]) => {
          const text = params.query
          if (text.includes('system.parts')) calls.parts++
          else if (/WHERE _part IN \{parts/.test(text)) calls.keys++
          else {
            calls.stats++
            last.from = String((params.query_params as { from?: string }).from)
          }
          return target.query(params)
        }
      return Reflect.get(target, prop, receiver)
    },
  })
  return { client, calls, last }
}
