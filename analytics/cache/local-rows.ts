export type LocalRowsOptions = { maxRows: number; ttlMs: number; now: () => number }

/**
 * Rows of closed periods that this process read from the Redis cache or stored in it,
 * kept in memory under the same keys. A key names the aggregates generation, and what
 * it holds never changes under that generation (a repair bumps it), so a row kept here
 * is the one Redis has: keeping it saves the round trip and the parsing (a 30-day range
 * of daily stats is 29 rows). A key is kept at most `ttlMs` from when it was first kept,
 * as Redis keeps it; at most `maxRows` rows in all, the least recently used key first.
 *
 * @example
 * const local = localRows<StatsRow>({ maxRows: 200_000, ttlMs: 86_400_000, now: Date.now })
 * local.add(key, [['2026-03-01', row]])
 * local.get(key)?.get('2026-03-01') // row
 */
export function localRows<R>(opts: LocalRowsOptions) {
  const entries = new Map<string, { rows: Map<string, R>; until: number }>()
  let total = 0
  const drop = (key: string) => {
    const e = entries.get(key)
    if (!e) return
    total -= e.rows.size
    entries.delete(key)
  }
  const live = (key: string) => {
    const e = entries.get(key)
    if (e && e.until <= opts.now()) {
      drop(key)
      return undefined
    }
    return e
  }
  return {
    /** The rows kept under `key` by period (read only), or undefined. */
    get(key: string): ReadonlyMap<string, R> | undefined {
      const e = live(key)
      if (!e) return undefined
      // Most recently used last: the first keys are the ones to drop.
      entries.delete(key)
      entries.set(key, e)
      return e.rows
    },
    /** Keeps rows under `key`; a period already kept keeps its row. */
    add(key: string, rows: Iterable<readonly [string, R]>): void {
      let e = live(key)
      if (!e) {
        e = { rows: new Map(), until: opts.now() + opts.ttlMs }
        entries.set(key, e)
      }
      for (const [period, row] of rows) {
        if (e.rows.has(period)) continue
        e.rows.set(period, row)
        total++
      }
      while (total > opts.maxRows && entries.size > 0) drop(entries.keys().next().value as string)
    },
    /** Rows kept in all (metrics, tests). */
    get size(): number {
      return total
    },
  }
}
