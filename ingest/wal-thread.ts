import { closeSync, openSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { writeAllText } from '../lib/write-all.ts'

/**
 * The thread that makes the write-ahead log's files durable (ingest/wal-writer.mjs), one per
 * process, started on first use; it keeps the process alive only while a call is pending.
 *
 * Why a thread of its own: asynchronous fsyncs run in the runtime's shared thread pool
 * (two threads under Bun), where the embedded engine's statements run too, a load holding
 * a thread for 0.3-1 s. At 3,000 paced players a flush's fsync, 1.3 ms in the kernel
 * (`perf trace`), was seen done after 1.7 ms at the median but up to 125 ms, and in the
 * slowest seconds flushes took 77-243 ms on average. On this thread: 21-31 ms, and the
 * players' p99 248-360 ms against 566-679 in three pairs (test/bench/HISTORY.md, 7 December).
 * The thread costs ~15 MiB of RSS.
 */
type Reply = { id: number; error?: string; fd?: number; path?: string; spares?: { fd: number; path: string }[] }
type Pending = { resolve(reply: Reply): void; reject(err: Error): void }
/** A file the thread made ready, empty, in a folder of spare files: the next write given that folder takes it. */
type Spare = { fd: number; path: string }
type SparePool = { ready: Spare[]; asked: number }

/**
 * Spare files kept ready a folder. Creating a file is slow on this project's ext4 VMs (inode
 * allocation, which a `perf record` of the engine's bulk inserts also found costly here):
 * `openSync` was 1.7–2.5 % of the edge's JavaScript thread in profiles of the closed loop,
 * 0.4–0.6 ms a call (test/bench/HISTORY.md, thirty-third session). Made on
 * the log's own thread instead, each with the commit of a write that took one (one message a
 * write, as before: asked for apart, they doubled the messages, and postMessage went from 0.4
 * to 1.4 % of the thread); a write that finds none ready makes its own file, as before.
 */
const SPARES = 3
/**
 * Most spare files a folder keeps when entries and manifests removed are turned into spares
 * (see remove): a load removes about fifteen entries and its manifest, and the writes until the
 * next load take about as many.
 */
const RECYCLED_MAX = 32

function startWriter() {
  const worker = new Worker(new URL('./wal-writer.mjs', import.meta.url))
  worker.unref()
  const pending = new Map<number, Pending>()
  let next = 0
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err)
    pending.clear()
    // The thread that opened them is gone: closed here (no thread's record of them is left).
    for (const pool of pools.values()) for (const spare of pool.ready.splice(0)) closeSync(spare.fd)
    pools.clear()
    thread = undefined // the next call starts a new one
  }
  worker.on('message', (reply: Reply) => {
    const p = pending.get(reply.id)
    if (!p) return
    pending.delete(reply.id)
    if (pending.size === 0) worker.unref()
    if (reply.error === undefined) p.resolve(reply)
    else p.reject(new Error(reply.error))
  })
  worker.on('error', (err) => failAll(err))
  worker.on('exit', (code) => failAll(new Error(`the write-ahead log's writer thread exited (${code})`)))
  const ask = (msg: Record<string, unknown>) =>
    new Promise<Reply>((resolve, reject) => {
      const id = next++
      pending.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ ...msg, id })
    })
  const call = (msg: Record<string, unknown>): Promise<void> => ask(msg).then(() => {})

  /** Spare files by their folder; a pool replaced or dropped (dropSpares) takes no more of them. */
  const pools = new Map<string, SparePool>()
  /** What came of a spare asked for `pool` (in the answer to a commit, or to an ask of its own): the file, or none when the thread could not make it. */
  const arrived = (dir: string, pool: SparePool, { fd, path }: Partial<Spare> = {}) => {
    pool.asked--
    if (fd === undefined || path === undefined) return
    if (pools.get(dir) === pool) pool.ready.push({ fd, path })
    else discard([{ fd, path }])
  }
  /**
   * Spare files not to be used, closed and removed by the thread that opened them: Node keeps
   * a record of the descriptors each thread opens, and warns when one it holds for open comes
   * back from another thread's open after this one closed it.
   */
  const discard = (spares: Spare[]) => {
    if (spares.length > 0) void ask({ op: 'discard', spares }).catch(() => {})
  }
  /** A new, empty pool of spare files for the folder `dir`, in place of any before. */
  const newPool = (dir: string): SparePool => {
    const pool: SparePool = { ready: [], asked: 0 }
    pools.set(dir, pool)
    return pool
  }
  /**
   * A spare file of the folder `dir`, if one is ready, and where the thread should make the next one
   * (with the commit of this write: no message of its own), while fewer than SPARES are ready
   * or coming. A pool starts with asks of their own, so that the next writes find some.
   */
  const takeSpare = (dir: string): { spare?: Spare; pool: SparePool; more: boolean } => {
    let pool = pools.get(dir)
    if (!pool) {
      const first = (pool = newPool(dir))
      for (let i = 1; i < SPARES; i++) {
        first.asked++
        void ask({ op: 'spare', dir }).then((reply) => arrived(dir, first, reply), () => arrived(dir, first))
      }
    }
    const spare = pool.ready.pop()
    const more = pool.ready.length + pool.asked < SPARES
    if (more) pool.asked++
    return { spare, pool, more }
  }

  return {
    /**
     * Writes `file` durably from `parts` (texts, in order): into a temporary file here (the
     * page cache: no wait for the disk), then on the thread fsync, rename into place, fsync
     * of the folder. The text is written here (see writeAllText): handed to the thread, a
     * flush's megabytes would be copied once more each time. One event-loop turn a flush, for
     * the answer: under load a turn is what a flush waits for (with each of its nine calls
     * awaited, a flush once took 161 ms on average in bench:ingest for about 3 ms of work).
     */
    write(file: string, parts: string[], opts: { spares?: string } = {}): Promise<void> {
      // With `spares`, a file the thread made ready in that folder (see SPARES), renamed into place.
      const spares = opts.spares
      const taken = spares === undefined ? undefined : takeSpare(spares)
      const tmp = taken?.spare?.path ?? `${file}.tmp`
      let fd: number | undefined = taken?.spare?.fd
      const spareDir = taken?.more ? spares : undefined
      // Each descriptor is closed by the thread that opened it (see discard): a spare file's by the
      // log's thread once committed (or not), one opened here once answered, whatever the answer.
      const own = taken?.spare !== undefined
      try {
        fd ??= openSync(tmp, 'w', 0o600)
        for (const part of parts) writeAllText(fd, part)
      } catch (err) {
        if (taken?.spare) discard([taken.spare])
        else if (fd !== undefined) closeSync(fd)
        if (taken?.more) taken.pool.asked--
        return Promise.reject(err)
      }
      return ask({ op: 'commit', fd, tmp, file, spareDir, own })
        .then(
          (reply) => void (taken?.more && arrived(spares!, taken.pool, reply)),
          (err: unknown) => {
            if (taken?.more) arrived(spares!, taken.pool)
            throw err
          },
        )
        .finally(() => {
          if (!own) closeSync(fd)
        })
    },
    /** Spare files ready now in the folder `dir` (tests). */
    sparesReady(dir: string): number {
      return pools.get(dir)?.ready.length ?? 0
    },
    /**
     * Forgets the spare files of the folder `dir` and has them closed (start-up, before the folder's torn
     * writes and spares are removed): a log made anew over the folder in the same process
     * must not write into files it deletes.
     */
    dropSpares(dir: string): void {
      const pool = pools.get(dir)
      pools.delete(dir)
      discard(pool?.ready.splice(0) ?? [])
    },
    /**
     * Removes the files (those already gone too). With `spares`, as many of them as that folder's
     * spare files fall short of RECYCLED_MAX become spare files of it instead (renamed there,
     * emptied: see recycle in wal-writer.mjs), which later writes take as they take the others.
     */
    remove(files: string[], opts: { spares?: string } = {}): Promise<void> {
      const dir = opts.spares
      if (dir === undefined) return call({ op: 'remove', files })
      const into = pools.get(dir) ?? newPool(dir)
      const count = Math.max(0, Math.min(files.length, RECYCLED_MAX - into.ready.length - into.asked))
      into.asked += count
      return ask({ op: 'remove', files, recycle: { dir, count } }).then(
        (reply) => {
          const made = reply.spares ?? []
          for (const spare of made) arrived(dir, into, spare)
          into.asked -= count - made.length
        },
        (err: unknown) => {
          into.asked -= count
          throw err
        },
      )
    },
    /** Makes the folder (and its parents) and its name in its parent durable. */
    mkdir(dir: string): Promise<void> {
      return call({ op: 'mkdir', dir })
    },
  }
}

let thread: ReturnType<typeof startWriter> | undefined

export function walThread(): ReturnType<typeof startWriter> {
  return (thread ??= startWriter())
}
