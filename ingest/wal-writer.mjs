// The write-ahead log's writer thread (see wal-thread.ts): it makes each file durable with
// blocking calls, so that the log's fsyncs never wait in the runtime's shared thread pool
// behind the embedded engine's statements. Plain JavaScript: Node (the tests) and Bun (the
// servers) both start a worker's module as it is.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { parentPort } from 'node:worker_threads'
import { writeAll } from '../lib/write-all.mjs'

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
 * To a temporary name, fsync, rename into place, fsync of the folder (the rename must
 * survive a power cut too, or start-up would drop the .tmp file).
 * @param {string} file
 * @param {Uint8Array[]} parts
 */
function writeDurably(file, parts) {
  const tmp = `${file}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    for (const part of parts) writeAll(fd, part)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
  fsyncPath(dirname(file))
}

/** @param {{ id: number, op: string, file?: string, parts?: Uint8Array[], files?: string[], dir?: string }} msg */
function run(msg) {
  if (msg.op === 'write' && msg.file && msg.parts) return writeDurably(msg.file, msg.parts)
  if (msg.op === 'remove' && msg.files) {
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
    run(msg)
    parentPort?.postMessage({ id: msg.id })
  } catch (err) {
    parentPort?.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) })
  }
})
