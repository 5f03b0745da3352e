import { writeSync } from 'node:fs'

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
