/**
 * Runs lookups in batches: calls made while `concurrency` batches run wait and then go
 * together into the next one, so N different lookups cost a few queries instead of N
 * queued ones (chDB runs one query at a time per process: there, one batch at a time).
 * Every answer comes from a query that started after its call, so it is as fresh as a
 * query of its own. `run` answers the items in order; if it fails, every call of that
 * batch fails with its error.
 *
 * With `gatherMs`, a call that finds no batch running waits that long for others to join
 * it: the requests of a burst reach the batcher a few milliseconds apart (each after its
 * own Redis round trips), and without the wait the first would go alone and the rest
 * queue behind it, two queries where one does. Calls made while a batch runs go as soon
 * as it ends, with no wait. With `onTheWay` too (see arrivals.ts), a batch whose first
 * call finds others under way waits for those instead (until at most `gatherMaxMs` after
 * that call), and goes as soon as they have joined: a burst spread over longer than
 * gatherMs still goes as one batch, one that came together goes without the fixed wait,
 * and a lone call (none under way) waits gatherMs, as without onTheWay.
 *
 * @example
 * const lookup = batcher((ids: string[]) => getVideos(ch, ids))
 * const video = await lookup('v_1')
 */
export function batcher<I, O>(
  run: (items: I[]) => Promise<O[]>,
  opts: { maxItems?: number; concurrency?: number; gatherMs?: number; onTheWay?: { settled(): Promise<void>; readonly out: number }; gatherMaxMs?: number } = {},
): (item: I) => Promise<O> {
  const maxItems = opts.maxItems ?? 256
  const concurrency = opts.concurrency ?? 1
  const gatherMs = opts.gatherMs ?? 0
  const gatherMaxMs = opts.gatherMaxMs ?? gatherMs
  let waiting: { item: I; resolve(o: O): void; reject(e: unknown): void }[] = []
  let running = 0
  let gathering = false

  async function gather(): Promise<void> {
    // The calls under way as the first one came: later ones are not waited for (under a steady
    // load there are always some, and waiting for them would leave the engine idle).
    const before = opts.onTheWay && gatherMaxMs > gatherMs ? opts.onTheWay.settled() : undefined
    // With calls under way, they are what the batch waits for, not also gatherMs: a burst's calls
    // all took their tickets as they arrived, long before the first of them got here. gatherMs is
    // for a call that finds none under way, whose companions may not have arrived yet.
    const waitFixed = !before || opts.onTheWay!.out === 0
    if (waitFixed) await new Promise((r) => setTimeout(r, gatherMs))
    if (!before) return
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([before, new Promise((r) => (timer = setTimeout(r, gatherMaxMs - (waitFixed ? gatherMs : 0))))])
    clearTimeout(timer)
  }

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
    if (gatherMs <= 0 || running >= concurrency) start()
    else if (!gathering) {
      gathering = true
      void gather().then(() => {
        gathering = false
        start()
      })
    }
    return answer
  }
}
