/**
 * Runs lookups in batches, one batch at a time: calls made while a batch runs wait
 * and then go together into the next one, so N different lookups cost about two
 * queries instead of N queued ones (chDB runs one query at a time per process). Every
 * answer comes from a query that started after its call, so it is as fresh as a query
 * of its own. `run` answers the items in order; if it fails, every call of that batch
 * fails with its error.
 *
 * @example
 * const lookup = batcher((ids: string[]) => getVideos(ch, ids))
 * const video = await lookup('v_1')
 */
export function batcher<I, O>(run: (items: I[]) => Promise<O[]>, opts: { maxItems?: number } = {}): (item: I) => Promise<O> {
  const maxItems = opts.maxItems ?? 256
  let waiting: { item: I; resolve(o: O): void; reject(e: unknown): void }[] = []
  let running = false

  async function drain(): Promise<void> {
    running = true
    while (waiting.length > 0) {
      const batch = waiting.slice(0, maxItems)
      waiting = waiting.slice(batch.length)
      try {
        const out = await run(batch.map((w) => w.item))
        batch.forEach((w, i) => w.resolve(out[i] as O))
      } catch (err) {
        for (const w of batch) w.reject(err)
      }
    }
    running = false
  }

  return function batched(item: I): Promise<O> {
    const answer = new Promise<O>((resolve, reject) => waiting.push({ item, resolve, reject }))
    if (!running) void drain()
    return answer
  }
}
