/**
 * Runs lookups in batches: calls made while `concurrency` batches run wait and then go
 * together into the next one, so N different lookups cost a few queries instead of N
 * queued ones (chDB runs one query at a time per process: there, one batch at a time).
 * Every answer comes from a query that started after its call, so it is as fresh as a
 * query of its own. `run` answers the items in order; if it fails, every call of that
 * batch fails with its error.
 *
 * @example
 * const lookup = batcher((ids: string[]) => getVideos(ch, ids))
 * const video = await lookup('v_1')
 */
export function batcher<I, O>(run: (items: I[]) => Promise<O[]>, opts: { maxItems?: number; concurrency?: number } = {}): (item: I) => Promise<O> {
  const maxItems = opts.maxItems ?? 256
  const concurrency = opts.concurrency ?? 1
  let waiting: { item: I; resolve(o: O): void; reject(e: unknown): void }[] = []
  let running = 0

  async function runOne(batch: typeof waiting): Promise<void> {
    try {
      const out = await run(batch.map((w) => w.item))
      batch.forEach((w, i) => w.resolve(out[i] as O))
    } catch (err) {
      for (const w of batch) w.reject(err)
    }
  }

  function start(): void {
    while (running < concurrency && waiting.length > 0) {
      const batch = waiting.slice(0, maxItems)
      waiting = waiting.slice(batch.length)
      running++
      void runOne(batch).finally(() => {
        running--
        start()
      })
    }
  }

  return function batched(item: I): Promise<O> {
    const answer = new Promise<O>((resolve, reject) => waiting.push({ item, resolve, reject }))
    start()
    return answer
  }
}
