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
 * Writes all of `text` to `fd` as UTF-8; returns its bytes. The text is encoded into one
 * buffer kept for every call (this thread's; the calls are synchronous), grown to the largest
 * text's need up to SCRATCH_MAX_BYTES, instead of a fresh buffer for each flush's megabytes
 * (which took more system time too). `Buffer.from(text)` a write was 8.8 % of the edge's
 * JavaScript thread in a profile of bench:ingest (5 December, evening); `writeSync(fd, text)`,
 * Bun encoding into a buffer of its own, took 0.34 ms a 770 KB flush against 0.16 ms into the
 * kept one (in Bun, alone; test/bench/HISTORY.md, thirty-third session). A longer text goes
 * to the write as it is.
 */
export function writeAllText(fd: number, text: string): number {
  // A UTF-16 unit takes at most 3 bytes of UTF-8 (a pair of them, 4).
  const most = text.length * 3
  if (most > SCRATCH_MAX_BYTES) {
    const n = writeSync(fd, text)
    const bytes = Buffer.byteLength(text)
    if (n < bytes) writeAll(fd, Buffer.from(text).subarray(Math.max(0, n)))
    return bytes
  }
  if (scratch.length < most) scratch = Buffer.allocUnsafeSlow(Math.max(most, 2 * scratch.length))
  const bytes = scratch.write(text, 0)
  writeAll(fd, scratch.subarray(0, bytes))
  return bytes
}

/** The most the kept buffer of writeAllText grows to (its pages stay resident). */
export const SCRATCH_MAX_BYTES = 16 * 1024 * 1024
let scratch = Buffer.allocUnsafeSlow(64 * 1024)
