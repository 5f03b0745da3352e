/**
 * Runs one computation per key at a time: callers asking for the same key while it
 * runs share its result instead of queueing identical queries behind it (chDB runs
 * parameterised queries one at a time). A shared answer is at most one query old.
 *
 * @example
 * const flight = singleFlight<Row[]>()
 * const rows = await flight(JSON.stringify(query), () => videoStats(ch, query))
 */
export function singleFlight<T>() {
  const running = new Map<string, Promise<T>>()
  return function shared(key: string, compute: () => Promise<T>): Promise<T> {
    const current = running.get(key)
    if (current) return current
    const p = compute().finally(() => running.delete(key))
    running.set(key, p)
    return p
  }
}
