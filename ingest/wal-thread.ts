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
type Reply = { id: number; error?: string }
type Pending = { resolve(): void; reject(err: Error): void }

function startWriter() {
  const worker = new Worker(new URL('./wal-writer.mjs', import.meta.url))
  worker.unref()
  const pending = new Map<number, Pending>()
  let next = 0
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err)
    pending.clear()
    thread = undefined // the next call starts a new one
  }
  worker.on('message', (reply: Reply) => {
    const p = pending.get(reply.id)
    if (!p) return
    pending.delete(reply.id)
    if (pending.size === 0) worker.unref()
    if (reply.error === undefined) p.resolve()
    else p.reject(new Error(reply.error))
  })
  worker.on('error', (err) => failAll(err))
  worker.on('exit', (code) => failAll(new Error(`the write-ahead log's writer thread exited (${code})`)))
  const call = (msg: Record<string, unknown>) =>
    new Promise<void>((resolve, reject) => {
      const id = next++
      pending.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ ...msg, id })
    })
  return {
    /**
     * Writes `file` durably from `parts` (texts, in order): into a temporary file here (the
     * page cache: no wait for the disk), then on the thread fsync, rename into place, fsync
     * of the folder; closed here. The text goes to write(2) as it is (see writeAllText):
     * handed over, it would be copied or encoded into bytes first, a flush's megabytes each
     * time. One event-loop turn a flush, for the answer: under load a turn is what a flush
     * waits for (with each of its nine calls awaited, a flush once took 161 ms on average in
     * bench:ingest for about 3 ms of work).
     */
    write(file: string, parts: string[]): Promise<void> {
      const tmp = `${file}.tmp`
      let fd: number | undefined
      try {
        fd = openSync(tmp, 'w', 0o600)
        for (const part of parts) writeAllText(fd, part)
      } catch (err) {
        if (fd !== undefined) closeSync(fd)
        return Promise.reject(err)
      }
      // Closed here once answered, whatever the answer: Node warns when another thread closes it.
      return call({ op: 'commit', fd, tmp, file }).finally(() => closeSync(fd))
    },
    /** Removes the files (those already gone too). */
    remove(files: string[]): Promise<void> {
      return call({ op: 'remove', files })
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
