import { writeSync, writevSync } from 'node:fs'

/**
 * Writes all of `buf` to `fd`: write(2) may write less than asked (a full disk, a
 * signal), so the rest is written until all is, or it throws.
 */
export function writeAll(fd: number, buf: Uint8Array): void {
  for (let off = 0; off < buf.length; ) {
    const n = writeSync(fd, buf, off, buf.length - off)
    if (n <= 0) throw new Error(`write(2) wrote ${n} bytes`)
    off += n
  }
}

/**
 * Writes all of `text` to `fd` as UTF-8; returns its bytes. The string goes to the write
 * as it is: made into a Buffer first, a flush's megabytes of text were a JavaScript
 * allocation each; those Buffers were 8.8 % of the edge's JavaScript thread in a profile of
 * bench:ingest (the collections they set off counted in; test/bench/HISTORY.md, 5 December,
 * evening).
 * A short write (rare: a full disk, a signal) has the rest written from its bytes.
 */
export function writeAllText(fd: number, text: string): number {
  const n = writeSync(fd, text)
  const bytes = Buffer.byteLength(text)
  if (n < bytes) writeAll(fd, Buffer.from(text).subarray(Math.max(0, n)))
  return bytes
}

/** At most this many buffers a writev(2) (Linux's IOV_MAX is 1024). */
const IOV_MAX = 1024

/** What of `bufs` is left to write once their first `n` bytes have been written. */
export function unwritten(bufs: Uint8Array[], n: number): Uint8Array[] {
  const rest: Uint8Array[] = []
  for (const b of bufs) {
    if (n >= b.length) n -= b.length
    else {
      rest.push(n > 0 ? b.subarray(n) : b)
      n = 0
    }
  }
  return rest
}

/**
 * Writes all of `bufs`, in order, to `fd` with writev(2), IOV_MAX at a time (a flush's
 * requests' chunks: one system call instead of one each); a short write has the rest
 * written. Returns the bytes written.
 */
export function writeAllv(fd: number, bufs: Uint8Array[]): number {
  let bytes = 0
  for (let i = 0; i < bufs.length; i += IOV_MAX) {
    const group = bufs.slice(i, i + IOV_MAX)
    const want = group.reduce((n, b) => n + b.length, 0)
    const n = writevSync(fd, group)
    if (n < want) for (const b of unwritten(group, Math.max(0, n))) writeAll(fd, b)
    bytes += want
  }
  return bytes
}
