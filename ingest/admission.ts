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
 * A queue is for bursts, not for an overload (CoDel's rule, Nichols and Jacobson, "Controlling
 * Queue Delay", 2012, applied to admission as Facebook's servers do): when every batch that
 * left the queue for a whole `intervalMs` had waited `targetMs` or more, the queue is standing,
 * and from then on a batch that finds no free place is refused at once, however short the
 * queue, until a batch leaves it after less than `targetMs` or it empties. A crowd of players
 * starting together waits its turn; a load beyond what the edge takes is refused before it
 * has waited for nothing.
 *
 * @example
 * const admission = createAdmission({ max: 400, waitMs: 1_000, maxWaiting: 1_000, targetMs: 100, intervalMs: 1_000 })
 * const leave = await admission.enter()
 * if (!leave) return overloaded()
 * try { … } finally { leave() }
 */
export function createAdmission(opts: {
  max: number
  waitMs: number
  maxWaiting?: number
  /** A wait for a place this long or longer is too long (default: no standing-queue rule). */
  targetMs?: number
  /** How long every wait must have been too long before the queue counts as standing. */
  intervalMs?: number
  /** Each wait for a place, when it ends (let in or not), in milliseconds. */
  onWait?: (ms: number) => void
  now?: () => number
}) {
  const slots = new Semaphore(opts.max)
  const timed = withTimeout(slots, opts.waitMs)
  const maxWaiting = opts.waitMs <= 0 ? 0 : (opts.maxWaiting ?? Infinity)
  const targetMs = opts.targetMs ?? Infinity
  const intervalMs = opts.intervalMs ?? 0
  const now = opts.now ?? (() => performance.now())
  let waiting = 0
  /** Since when every wait that ended was too long (CoDel's first_above_time), if so. */
  let aboveSince: number | undefined
  let standing = false
  const waited = (ms: number, at: number) => {
    opts.onWait?.(ms)
    if (ms < targetMs) (aboveSince = undefined), (standing = false)
    else if (aboveSince === undefined) aboveSince = at
    else if (at - aboveSince >= intervalMs) standing = true
  }
  return {
    /**
     * Resolves with the function that lets the request out (a second call does nothing: the
     * semaphore's releasers are idempotent), or undefined when it was refused.
     */
    async enter(): Promise<(() => void) | undefined> {
      // A free slot and nobody waiting: in at once (the usual case).
      if (!slots.isLocked()) return (await slots.acquire())[1]
      if (waiting >= maxWaiting || standing) return undefined
      waiting++
      const from = now()
      try {
        return (await timed.acquire())[1]
      } catch (err) {
        if (err !== E_TIMEOUT) throw err
        return undefined
      } finally {
        waiting--
        const at = now()
        waited(at - from, at)
        // An empty queue stands no more (CoDel leaves its dropping state when the queue empties).
        if (waiting === 0) (aboveSince = undefined), (standing = false)
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
    /** Whether the queue stands: every wait for a whole interval was too long (see above). */
    get standing(): boolean {
      return standing
    },
    /** Whether a request arriving now would be refused at once: no free place, and as many waiting as may or a standing queue. */
    get full(): boolean {
      return slots.isLocked() && (waiting >= maxWaiting || standing)
    },
  }
}
