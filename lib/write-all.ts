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
