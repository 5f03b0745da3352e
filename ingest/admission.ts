import { E_TIMEOUT, Semaphore, withTimeout } from 'async-mutex'

/**
 * How many event batches the edge takes in at once: a request enters before its body is read
 * and leaves once it is answered. The row buffer (BUFFER_MAX_ROWS) bounds what is decided and
 * waiting to be stored, but a batch is parsed and checked before it reserves its rows, and
 * nothing bounded that: 10,000 players starting together (or coming back after a restart) had
 * the edge parse their batches all at once, the JavaScript heap reached 539 MiB and the server
 * 1,346 MiB; with at most 1,000 batches in, the server peaked at 976 MiB and none was refused
 * (bench:ingest, 10,000 paced players; test/bench/HISTORY.md, twenty-seventh session).
 * Waiting requests hold their unread bodies only. Those beyond the limit wait in order of arrival,
 * up to `waitMs`, then are refused (the route answers 503 with Retry-After).
 *
 * At most `maxWaiting` wait at once; one more is refused at once (`full`), which the edge
 * checks before anything else of the request (see shed in app.ts). Under a sustained overload
 * every place in an unbounded queue is taken, so that each batch let in has waited about
 * `waitMs` and each refused one waited that long for nothing, and the refusals, as many as the
 * players retrying, took the edge's thread from the batches it takes in (test/bench/HISTORY.md,
 * thirty-first session).
 *
 * @example
 * const admission = createAdmission({ max: 400, waitMs: 1_000, maxWaiting: 200 })
 * const leave = await admission.enter()
 * if (!leave) return overloaded()
 * try { … } finally { leave() }
 */
export function createAdmission(opts: {
  max: number
  waitMs: number
  maxWaiting?: number
  /** Each wait for a place, when it ends (let in or not), in milliseconds. */
  onWait?: (ms: number) => void
}) {
  const slots = new Semaphore(opts.max)
  const timed = withTimeout(slots, opts.waitMs)
  const maxWaiting = opts.waitMs <= 0 ? 0 : (opts.maxWaiting ?? Infinity)
  let waiting = 0
  return {
    /**
     * Resolves with the function that lets the request out (a second call does nothing: the
     * semaphore's releasers are idempotent), or undefined when it was refused.
     */
    async enter(): Promise<(() => void) | undefined> {
      // A free slot and nobody waiting: in at once (the usual case).
      if (!slots.isLocked()) return (await slots.acquire())[1]
      if (waiting >= maxWaiting) return undefined
      waiting++
      const from = performance.now()
      try {
        return (await timed.acquire())[1]
      } catch (err) {
        if (err !== E_TIMEOUT) throw err
        return undefined
      } finally {
        waiting--
        opts.onWait?.(performance.now() - from)
      }
    },
    /** Requests inside now (a refused request's place, granted after its wait ran out, is given back at once). */
    get inside(): number {
      return opts.max - slots.getValue()
    },
    /** Requests waiting for a place now. */
    get waiting(): number {
      return waiting
    },
    /** Whether a request arriving now would be refused at once: no free place, and as many waiting as may. */
    get full(): boolean {
      return slots.isLocked() && waiting >= maxWaiting
    },
  }
}
