export type OpenAnswersOptions = { maxAgeMs: number; maxEntries?: number; now?: () => number }

/**
 * Answers over open periods kept in this process while the data has not changed: each
 * is stored under the data version it was computed at (the aggregates generation and
 * the id of the latest load into ClickHouse, see AggregateCache.versions), so once a load lands
 * no request gets an answer from before it. `maxAgeMs` bounds the reuse should a
 * version bump be lost (Redis briefly unreachable from the edge); 0 turns reuse off, as
 * does an unknown version (null). `stored`: the answer was computed and kept.
 * Entries are bounded; the least recently used goes first. Identical computations
 * running at once are the caller's to share (the readers' `compute` is single-flight).
 *
 * @example
 * const open = openAnswers<Row[]>({ maxAgeMs: 10_000 })
 * const { value, reused, stored } = await open(versions?.data ?? null, JSON.stringify(query), () => runQuery(query))
 */
export function openAnswers<T>(opts: OpenAnswersOptions) {
  const maxEntries = opts.maxEntries ?? 5_000
  const now = opts.now ?? Date.now
  const entries = new Map<string, { value: T; at: number }>()
  return async function openAnswer(version: string | null, key: string, compute: () => Promise<T>): Promise<{ value: T; reused: boolean; stored: boolean }> {
    if (version === null || opts.maxAgeMs === 0) return { value: await compute(), reused: false, stored: false }
    const k = `${version}|${key}`
    const hit = entries.get(k)
    if (hit && now() - hit.at < opts.maxAgeMs) {
      entries.delete(k)
      entries.set(k, hit)
      return { value: hit.value, reused: true, stored: false }
    }
    const at = now()
    const value = await compute()
    entries.delete(k)
    entries.set(k, { value, at })
    while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string)
    return { value, reused: false, stored: true }
  }
}
