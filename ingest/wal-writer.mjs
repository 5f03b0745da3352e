// The write-ahead log's writer thread (see wal-thread.ts): it makes each file durable with
// blocking calls, so that the log's fsyncs never wait in the runtime's shared thread pool
// behind the embedded engine's statements (the file's bytes are written by the thread that
// has them). Plain JavaScript: Node (the tests) and Bun (the servers) both start a worker's
// module as it is.
import { randomUUID } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parentPort } from 'node:worker_threads'

/** @param {string} path */
function fsyncPath(path) {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Makes a file the other thread has written under a temporary name durable, then renames
 * it into place: fsync of its descriptor (descriptors are the process's, not a thread's;
 * the thread that opened it closes it once answered), rename, fsync of the folder (the
 * rename must survive a power cut too, or start-up would drop the .tmp file).
 * @param {number} fd
 * @param {string} tmp
 * @param {string} file
 */
function commit(fd, tmp, file) {
  fsyncSync(fd)
  renameSync(tmp, file)
  fsyncPath(dirname(file))
}

/**
 * Closes a descriptor this thread opened (a spare file's) and removes its file when asked:
 * descriptors are closed by the thread that opened them (see wal-thread.ts).
 * @param {number} fd
 * @param {string} [path]
 */
function discard(fd, path) {
  try {
    closeSync(fd)
  } finally {
    if (path) rmSync(path, { force: true })
  }
}

/**
 * An empty file made ready in `dir` (made if missing, in a folder that exists) for a later write: its descriptor and
 * path. Its name needs no fsync: the write's rename into place is what is made durable.
 * @param {string} dir
 */
function spare(dir) {
  const path = join(dir, `${randomUUID()}.tmp`)
  try {
    return { fd: openSync(path, 'w', 0o600), path }
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw err
    // The folder, on first use: never the log's own folder (one removed stays removed, its writes fail).
    mkdirSync(dir)
    return { fd: openSync(path, 'w', 0o600), path }
  }
}

/**
 * Removes `files`, the first `count` of them (those still there) by turning them into spare
 * files of `dir` instead: each renamed there, the folders they left made durable (so that no
 * removed name can come back after a power cut holding another write's bytes), then opened
 * empty. A new file costs ext4 (without a journal) a search past every inode freed in the last
 * minute or so, which the log's own churn of entries kept long: 43 % of this thread's samples were in
 * `__ext4_new_inode` under 5,000 paced players, and with this its CPU an event fell by a fifth
 * (test/bench/HISTORY.md, thirty-fifth session).
 * Returns the spare files made.
 * @param {string[]} files
 * @param {string} dir
 * @param {number} count
 */
function recycle(files, dir, count) {
  /** @type {{ file: string, path: string }[]} */
  const moved = []
  let room = count
  try {
    if (room > 0 && !existsSync(dir)) mkdirSync(dir)
  } catch {
    room = 0 // no spare folder (the log's own is gone): the files are only removed
  }
  for (const file of files) {
    if (moved.length >= room) break
    const path = join(dir, `${randomUUID()}.tmp`)
    try {
      renameSync(file, path)
    } catch {
      continue // removed already (or not to be moved: removed below)
    }
    moved.push({ file, path })
  }
  for (const folder of new Set(moved.map((m) => dirname(m.file)))) fsyncPath(folder)
  const kept = new Set(moved.map((m) => m.file))
  for (const file of files) if (!kept.has(file)) rmSync(file, { force: true })
  /** @type {{ fd: number, path: string }[]} */
  const spares = []
  for (const { path } of moved) {
    try {
      spares.push({ fd: openSync(path, 'w', 0o600), path })
    } catch {
      rmSync(path, { force: true })
    }
  }
  return { spares }
}

/** @param {{ id: number, op: string, fd?: number, tmp?: string, file?: string, spareDir?: string, own?: boolean, spares?: { fd: number, path: string }[], files?: string[], dir?: string, recycle?: { dir: string, count: number } }} msg */
function run(msg) {
  if (msg.op === 'spare' && msg.dir) return spare(msg.dir)
  if (msg.op === 'commit' && msg.fd !== undefined && msg.tmp && msg.file) {
    // A spare file's descriptor (`own`: opened here) is closed here, committed or not.
    try {
      commit(msg.fd, msg.tmp, msg.file)
    } finally {
      if (msg.own) closeSync(msg.fd)
    }
    // The next spare file, with the answer (see wal-thread.ts): the commit stands without it.
    if (msg.spareDir) {
      try {
        return spare(msg.spareDir)
      } catch {
        return undefined
      }
    }
    return undefined
  }
  if (msg.op === 'discard' && msg.spares) {
    for (const s of msg.spares) discard(s.fd, s.path)
    return undefined
  }
  if (msg.op === 'remove' && msg.files) {
    if (msg.recycle) return recycle(msg.files, msg.recycle.dir, msg.recycle.count)
    for (const f of msg.files) rmSync(f, { force: true })
    return
  }
  if (msg.op === 'mkdir' && msg.dir) {
    // The folder, then its name in its parent, durably.
    mkdirSync(msg.dir, { recursive: true })
    return fsyncPath(dirname(msg.dir))
  }
  throw new Error(`the log's writer has no operation ${msg.op}`)
}

parentPort?.on('message', (msg) => {
  try {
    parentPort?.postMessage({ ...run(msg), id: msg.id })
  } catch (err) {
    parentPort?.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) })
  }
})
