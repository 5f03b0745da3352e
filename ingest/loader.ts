import type { Wal } from './wal.ts'

/**
 * Write-behind loader: puts the write-ahead log's entries into ClickHouse, several at
 * a time, behind the requests that were answered once their entry was on disk.
 *
 * A load takes the queued entries (up to `maxRows` rows), writes down which entries it
 * carries and under which dedup token (the load manifest), then inserts their rows as
 * one block. A failed insert is retried with the same block and token until it
 * succeeds or the loader is stopped; the entries stay in the log either way, so a
 * crash or a stop loses nothing (see repair.ts). One load runs at a time, and a new one
 * starts at most every `intervalMs`, so that blocks are large: an insert costs the
 * engine much the same whether it carries a thousand rows or fifty thousand.
 *
 * @example
 * const loader = createLoader({ wal, maxRows: 100_000, intervalMs: 200, insert: (bodies, token) => insertRawEvents(ch, bodies, token) })
 * loader.enqueue({ token, body, rows })   // once the entry is in the log
 * await loader.drain(30_000)              // at shutdown
 */
export type LoaderOptions = {
  wal: Pick<Wal, 'writeLoad' | 'removeLoad' | 'remove'>
  maxRows: number
  intervalMs: number
  /**
   * Inserts the entries' texts (TabSeparated rows), in order, as one block under the dedup token;
   * with `files`, the engine reads them from those files, the entries' own (see filesOf).
   */
  insert(bodies: string[], token: string, files?: readonly string[]): Promise<void>
  /**
   * The files of the entries (by token, in order) for the engine to read, or undefined when their
   * text is to be sent: asked once a load, before its manifest, which records the answer (see WalLoad).
   */
  filesOf?(entries: readonly string[]): readonly string[] | undefined
  /** After a load: its rows, its duration, and when the oldest of its entries was queued (epoch ms). */
  onLoad?(rows: number, seconds: number, oldestQueuedAt: number): void
  onError?(error: unknown, attempt: number): void
  /** Pause before retry `attempt` (ms); default doubles from 100 ms up to 5 s. */
  backoffMs?(attempt: number): number
}

export type LoaderEntry = { token: string; body: string; rows: number; queuedAt?: number }

export function createLoader(opts: LoaderOptions) {
  const queue: LoaderEntry[] = []
  let queuedRows = 0
  /** Characters of the queued entries' text (and of the load's, below): what the loader holds in memory. */
  let queuedBytes = 0
  /** Tokens of the entries in the current load and the load's own token. */
  const loading = new Set<string>()
  let loadingRows = 0
  let loadingBytes = 0
  let active: Promise<void> | undefined
  let lastStart = -Infinity
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  /** Callers of drain() waiting: loads start back to back meanwhile. */
  let draining = 0
  let idle: (() => void)[] = []
  const backoff = opts.backoffMs ?? ((attempt: number) => Math.min(5_000, 100 * 2 ** (attempt - 1)))

  function schedule(): void {
    if (active || stopped || queue.length === 0 || timer) return
    const wait = queuedRows >= opts.maxRows || draining > 0 ? 0 : lastStart + opts.intervalMs - performance.now()
    if (wait > 0) {
      timer = setTimeout(() => {
        timer = undefined
        schedule()
      }, wait)
      return
    }
    active = load().finally(() => {
      active = undefined
      if (queue.length === 0 && !active) {
        const wake = idle
        idle = []
        for (const w of wake) w()
      }
      schedule()
    })
  }

  async function load(): Promise<void> {
    lastStart = performance.now()
    const batch: LoaderEntry[] = []
    let rows = 0
    let bytes = 0
    while (queue.length > 0 && (batch.length === 0 || rows + queue[0]!.rows <= opts.maxRows)) {
      const e = queue.shift()!
      batch.push(e)
      rows += e.rows
      bytes += e.body.length
    }
    queuedRows -= rows
    queuedBytes -= bytes
    loadingRows = rows
    loadingBytes = bytes
    const token = crypto.randomUUID()
    const tokens = batch.map((e) => e.token)
    for (const t of [...tokens, token]) loading.add(t)
    try {
      const bodies = batch.map((e) => e.body)
      const files = opts.filesOf?.(tokens)
      let manifest = false
      for (let attempt = 1; ; attempt++) {
        try {
          if (!manifest) {
            await opts.wal.writeLoad(token, tokens, Date.now(), files !== undefined)
            manifest = true
          }
          await opts.insert(bodies, token, files)
          break
        } catch (err) {
          opts.onError?.(err, attempt)
          if (stopped) return // the entries (and the manifest, if written) stay in the log for the next start
          await new Promise((r) => setTimeout(r, backoff(attempt)))
          if (stopped) return
        }
      }
      opts.onLoad?.(rows, (performance.now() - lastStart) / 1000, Math.min(...batch.map((e) => e.queuedAt ?? Date.now())))
      await opts.wal.remove(...tokens)
      await opts.wal.removeLoad(token)
    } finally {
      for (const t of [...tokens, token]) loading.delete(t)
      loadingRows = 0
      loadingBytes = 0
    }
  }

  return {
    /** Queues an entry that is in the log. */
    enqueue(entry: LoaderEntry): void {
      queue.push({ ...entry, queuedAt: entry.queuedAt ?? Date.now() })
      queuedRows += entry.rows
      queuedBytes += entry.body.length
      schedule()
    },
    /** Whether this loader holds the entry or load token (queued or loading): the repair leaves it alone. */
    holds(token: string): boolean {
      return loading.has(token) || queue.some((e) => e.token === token)
    },
    /** Rows queued or being loaded. */
    get backlogRows(): number {
      return queuedRows + loadingRows
    },
    /** Characters of those rows' text (a byte each for ASCII text; see BUFFER_MAX_BYTES). */
    get backlogBytes(): number {
      return queuedBytes + loadingBytes
    },
    /**
     * Resolves once everything queued is loaded, or after `timeoutMs`; then, if `stop`,
     * stops (what is left stays in the log for the next start). Returns whether it all loaded.
     */
    async drain(timeoutMs = Infinity, stop = false): Promise<boolean> {
      if (timer) clearTimeout(timer)
      timer = undefined
      draining++
      try {
        schedule()
        if (queue.length > 0 || active) {
          let timeout: ReturnType<typeof setTimeout> | undefined
          await Promise.race([
            new Promise<void>((resolve) => idle.push(resolve)),
            new Promise<void>((resolve) => {
              if (Number.isFinite(timeoutMs)) timeout = setTimeout(resolve, timeoutMs)
            }),
          ])
          clearTimeout(timeout)
        }
        return queue.length === 0 && !active
      } finally {
        draining--
        if (stop) {
          stopped = true
          if (timer) clearTimeout(timer)
          timer = undefined
        }
      }
    },
  }
}

export type Loader = ReturnType<typeof createLoader>
