/**
 * Group commit: rows from concurrent requests are written as one insert per
 * `maxRows` rows or `intervalMs`, and each request's promise settles only once
 * its rows are stored (or their insert failed for good). Memory is bounded:
 * `reserve` refuses rows beyond `maxBufferedRows`, or bytes of their text beyond
 * `maxBufferedBytes`, instead of queueing them, and `waitForRoom` waits a while for
 * room, in order of arrival, before it refuses.
 *
 * @example
 * const gc = createGroupCommit({ maxRows: 10_000, intervalMs: 50, maxBufferedRows: 100_000, insert })
 * if (!gc.reserve(rows.length) && !(await gc.waitForRoom(rows.length, 1_000))) return overloaded()
 * await gc.submit(rows, meta)
 */
export type GroupCommitOptions<Row, Meta> = {
  maxRows: number
  intervalMs: number
  maxBufferedRows: number
  /**
   * Bytes of the rows' text at most (as reserved by the callers: see reserve); default no
   * bound. Rows bound memory only as long as rows are small: rows of a few kilobytes each
   * (invalid events keep their payload) took the edge to 1.5 GiB at 200,000 rows.
   */
  maxBufferedBytes?: number
  /** Rows held downstream after their batch settled (e.g. waiting to be loaded); they count against maxBufferedRows. */
  backlogRows?(): number
  /** Bytes of those rows' text; they count against maxBufferedBytes. */
  backlogBytes?(): number
  /** Writes one batch; must be idempotent for the same `token` (ClickHouse insert_deduplication_token). */
  insert(rows: Row[], token: string, metas: Meta[]): Promise<void>
  /** Called after a batch is stored, before its requests are answered (e.g. marking them committed). */
  afterCommit?(metas: Meta[], token: string): Promise<void>
  /** Called after a batch failed for good. */
  afterFailure?(metas: Meta[], error: unknown, token: string): Promise<void>
  /** Attempts per batch before its requests fail (same token each time). */
  attempts?: number
  /**
   * Batches written at the same time (default 1). Measured with bench:ingest, both when a
   * batch was a ClickHouse insert and now that it is a write-ahead log entry: 2 gave no gain
   * (paced at 25k events/s, three pairs of runs: the same rate, p99 within the noise).
   */
  maxInFlight?: number
  /** After each batch settles: its rows, its duration (insert and afterCommit), whether it was stored. */
  onFlush?(rows: number, seconds: number, ok: boolean): void
  /**
   * How often room is looked for while requests wait for it (default 5 ms): the backlog
   * downstream (`backlogRows`) shrinks without telling.
   */
  roomCheckMs?: number
}

type Waiter<Meta> = { rows: number; bytes: number; meta: Meta; resolve(): void; reject(err: unknown): void }

export class FlushError extends Error {
  override name = 'FlushError'
}

export function createGroupCommit<Row, Meta>(opts: GroupCommitOptions<Row, Meta>) {
  let pending: Row[] = []
  let waiters: Waiter<Meta>[] = []
  /** Rows reserved and not yet settled: pending, in flight, or still being decided; and the bytes reserved for their text. */
  let reserved = 0
  let reservedBytes = 0
  const maxBytes = opts.maxBufferedBytes ?? Infinity
  let timer: ReturnType<typeof setTimeout> | undefined
  const attempts = opts.attempts ?? 3
  /** Requests waiting for room, first come first served; each until its deadline (performance.now() ms). */
  let roomWaiters: { rows: number; bytes: number; until: number; done(ok: boolean): void }[] = []
  let roomTimer: ReturnType<typeof setTimeout> | undefined
  const fits = (rows: number, bytes: number) =>
    reserved + (opts.backlogRows?.() ?? 0) + rows <= opts.maxBufferedRows && reservedBytes + (opts.backlogBytes?.() ?? 0) + bytes <= maxBytes

  /** Gives room to the waiters at the head while it lasts; refuses those whose time ran out. */
  function admit(): void {
    while (roomWaiters.length > 0 && fits(roomWaiters[0]!.rows, roomWaiters[0]!.bytes)) {
      const w = roomWaiters.shift()!
      reserved += w.rows
      reservedBytes += w.bytes
      w.done(true)
    }
    const now = performance.now()
    if (roomWaiters.some((w) => w.until <= now)) {
      const still: typeof roomWaiters = []
      for (const w of roomWaiters) {
        if (w.until > now) still.push(w)
        else w.done(false)
      }
      roomWaiters = still
    }
    if (roomWaiters.length > 0 && !roomTimer)
      roomTimer = setTimeout(() => {
        roomTimer = undefined
        admit()
      }, opts.roomCheckMs ?? 5)
  }

  async function writeBatch(rows: Row[], batch: Waiter<Meta>[]): Promise<void> {
    const token = crypto.randomUUID()
    const started = performance.now()
    let lastError: unknown
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await opts.insert(rows, token, batch.map((w) => w.meta))
        try {
          await opts.afterCommit?.(batch.map((w) => w.meta), token)
        } catch {
          // The rows are stored; a retry finds them in ClickHouse even without the mark.
        }
        opts.onFlush?.(rows.length, (performance.now() - started) / 1000, true)
        for (const w of batch) w.resolve()
        return
      } catch (err) {
        lastError = err
        if (attempt < attempts) await new Promise((r) => setTimeout(r, 50 * attempt))
      }
    }
    opts.onFlush?.(rows.length, (performance.now() - started) / 1000, false)
    try {
      await opts.afterFailure?.(batch.map((w) => w.meta), lastError, token)
    } catch {
      // Without the mark a retry waits for the lease instead; nothing is lost.
    }
    const error = new FlushError(`insert failed: ${lastError instanceof Error ? lastError.message : String(lastError)}`)
    for (const w of batch) w.reject(error)
  }

  function takeBatch(): { rows: Row[]; batch: Waiter<Meta>[]; bytes: number } {
    // Whole requests only, so that a request's rows share one insert and one outcome.
    let count = 0
    let bytes = 0
    let n = 0
    while (n < waiters.length && (n === 0 || count + waiters[n]!.rows <= opts.maxRows)) {
      bytes += waiters[n]!.bytes
      count += waiters[n++]!.rows
    }
    const batch = waiters.slice(0, n)
    waiters = waiters.slice(n)
    const rows = pending.slice(0, count)
    pending = pending.slice(count)
    return { rows, batch, bytes }
  }

  const maxInFlight = opts.maxInFlight ?? 1
  let active = 0
  /** The interval ran out while every slot was busy: flush as soon as one frees. */
  let overdue = false
  /** Resolvers waiting for any batch to settle (flush()). */
  let settled: (() => void)[] = []

  /** Starts batches while slots are free: full ones always, a partial one when `force`d. */
  function start(force: boolean): void {
    while (active < maxInFlight && waiters.length > 0 && (force || pending.length >= opts.maxRows)) {
      if (timer) clearTimeout(timer)
      timer = undefined
      overdue = false
      const { rows, batch, bytes } = takeBatch()
      active++
      void writeBatch(rows, batch).finally(() => {
        active--
        reserved -= rows.length
        reservedBytes -= bytes
        if (roomWaiters.length > 0) admit()
        const wake = settled
        settled = []
        for (const w of wake) w()
        start(overdue)
      })
    }
    if (waiters.length > 0 && !timer && !overdue) {
      timer = setTimeout(() => {
        timer = undefined
        if (active >= maxInFlight) overdue = true
        start(true)
      }, opts.intervalMs)
    }
  }

  return {
    /**
     * Claims room for `rows` rows whose text takes at most `bytes` (an estimate made before the
     * rows are: see release); false when the buffer is full. Pair with submit or release.
     */
    reserve(rows: number, bytes = 0): boolean {
      // Not ahead of requests already waiting for room.
      if (roomWaiters.length > 0 || !fits(rows, bytes)) return false
      reserved += rows
      reservedBytes += bytes
      return true
    },
    /**
     * Waits up to `ms` for room for `rows` rows of `bytes`, behind the requests already
     * waiting, and claims it (true), or gives up (false). Rows that could never fit are
     * refused at once.
     */
    waitForRoom(rows: number, ms: number, bytes = 0): Promise<boolean> {
      if (ms <= 0 || rows > opts.maxBufferedRows || bytes > maxBytes) return Promise.resolve(false)
      return new Promise<boolean>((done) => {
        roomWaiters.push({ rows, bytes, until: performance.now() + ms, done })
        admit()
      })
    },
    /**
     * Gives back room reserved for rows that will not be submitted, or bytes the rows' text
     * turned out not to need. Negative bytes take more without a check (text longer than
     * its estimate: the bound is then passed by that much, never ignored).
     */
    release(rows: number, bytes = 0): void {
      reserved -= rows
      reservedBytes -= bytes
      if (roomWaiters.length > 0) admit()
    },
    /**
     * Queues reserved rows, whose text takes `bytes` of what was reserved; resolves once
     * they are stored. Rows and bytes must have been reserved; both come back once their
     * batch has settled.
     */
    submit(rows: Row[], meta: Meta, bytes = 0): Promise<void> {
      if (rows.length === 0) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        pending.push(...rows)
        waiters.push({ rows: rows.length, bytes, meta, resolve, reject })
        start(false)
      })
    },
    /** Writes everything queued now and waits for it (shutdown). */
    async flush(): Promise<void> {
      while (waiters.length > 0 || active > 0) {
        start(true)
        if (active > 0) await new Promise<void>((resolve) => settled.push(resolve))
      }
    },
    get bufferedRows(): number {
      return reserved
    },
    /** Bytes reserved for the text of those rows. */
    get bufferedBytes(): number {
      return reservedBytes
    },
    /** Requests waiting for room now. */
    get waitingForRoom(): number {
      return roomWaiters.length
    },
  }
}

export type GroupCommit<Row, Meta> = ReturnType<typeof createGroupCommit<Row, Meta>>
