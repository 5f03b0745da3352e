import { Worker } from 'node:worker_threads'

/**
 * The thread that makes the write-ahead log's files durable (ingest/wal-writer.mjs), one per
 * process, started on first use; it keeps the process alive only while a call is pending.
 *
 * Why a thread of its own: asynchronous fsyncs run in the runtime's shared thread pool
 * (two threads under Bun), where the embedded engine's statements run too, a load holding
 * a thread for 0.3-1 s. At 3,000 paced players a flush's fsync, 1.3 ms in the kernel
 * (`perf trace`), was seen done after 1.7 ms at the median but up to 125 ms, and the
 * flushes of the slowest seconds took 65-522 ms. With this thread: 21-53 ms in the
 * slowest seconds of five runs, and the JavaScript thread 6 % less CPU, the open, write,
 * close and rename calls being made here (test/bench/HISTORY.md, 7 December).
 *
 * Texts go over as UTF-8 bytes whose buffers are transferred, not copied.
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
  const call = (msg: Record<string, unknown>, transfer: ArrayBuffer[] = []) =>
    new Promise<void>((resolve, reject) => {
      const id = next++
      pending.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ ...msg, id }, transfer)
    })
  const encoder = new TextEncoder()
  return {
    /** Writes `file` durably from `parts` (texts, in order): temporary name, fsync, rename, fsync of the folder. */
    write(file: string, parts: string[]): Promise<void> {
      const bytes = parts.map((p) => encoder.encode(p))
      return call({ op: 'write', file, parts: bytes }, bytes.map((b) => b.buffer as ArrayBuffer))
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
