/**
 * Turns of the embedded engine between reads and loads. chDB runs one statement at a
 * time: a statement sent while another runs waits for it (a `SELECT` sent 50 ms into a
 * 1.3 s `INSERT … SELECT` answered after it; chDB alone, 6 December). Someone waits for a
 * read; nobody waits for a load of the edge's events (its players were answered once the
 * write-ahead log held them). So a load waits, for at most `maxWaitMs`, until no read is
 * under way and none was answered for `quietMs`: a batch of reads sends its statements one
 * after the other with a little JavaScript between them, and a load no longer comes between
 * them (under live ingest, 6 of the 7 slowest batches of a creator's stats had waited 99–174
 * ms for a load; test/bench/HISTORY.md). A read sent during a load still waits for it.
 *
 * @example
 * const turns = engineTurns({ quietMs: 2, maxWaitMs: 200 })
 * const rows = await turns.read(() => runSelect())
 * await turns.background(() => runInsert())
 */
export function engineTurns(opts: { quietMs: number; maxWaitMs: number; now?: () => number }) {
  const now = opts.now ?? (() => performance.now())
  let reads = 0
  let lastAnswered = -Infinity
  const waiting = new Set<() => void>()
  let check: ReturnType<typeof setTimeout> | undefined
  /** Loads that waited for their turn, and how long in all (ms). */
  const held = { loads: 0, ms: 0 }

  /** How long until the reads have been quiet for quietMs (0 or less: they have). */
  const quietLeft = () => opts.quietMs - (now() - lastAnswered)
  /** Lets the waiting loads go once no read is under way and the reads have been quiet for quietMs. */
  const schedule = () => {
    if (check !== undefined || waiting.size === 0 || reads > 0) return
    check = setTimeout(() => {
      check = undefined
      if (reads > 0) return // the read's end schedules again
      if (quietLeft() > 0) return schedule()
      for (const go of waiting) go()
    }, Math.max(0, quietLeft()))
  }

  return {
    /** Runs a read: loads wait while it is under way. */
    async read<T>(run: () => Promise<T>): Promise<T> {
      reads++
      try {
        return await run()
      } finally {
        reads--
        lastAnswered = now()
        schedule()
      }
    },
    /** Runs a load once no read is under way or has just been answered, or after maxWaitMs. */
    async background<T>(run: () => Promise<T>): Promise<T> {
      if (reads > 0 || quietLeft() > 0) {
        const since = now()
        await new Promise<void>((resolve) => {
          const timer = setTimeout(go, opts.maxWaitMs)
          function go() {
            clearTimeout(timer)
            waiting.delete(go)
            resolve()
          }
          waiting.add(go)
          schedule()
        })
        held.loads++
        held.ms += now() - since
      }
      return run()
    },
    /** Reads under way and loads waiting for their turn (for tests). */
    get state() {
      return { reads, waiting: waiting.size }
    },
    /** Loads that waited for their turn so far, and how long in all (ms). */
    get held() {
      return { ...held }
    },
  }
}

export type EngineTurns = ReturnType<typeof engineTurns>

/** The query_id prefix that marks a statement as a load, one nobody waits for at once (see engineTurns): insertRawEvents and the settlement job's line statements set it. */
export const BACKGROUND_QUERY_PREFIX = 'load-'
