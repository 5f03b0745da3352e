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

/** Most bytes the buffer of writeText keeps between calls (a longer text gets a buffer of its own). */
const KEPT_MAX = 64 * 1024 * 1024
let kept = Buffer.allocUnsafe(0)

/**
 * Writes `text` to `fd` as UTF-8 through one buffer the process keeps, and returns the
 * bytes written. A `Buffer.from` of each log entry and load (megabytes, several a
 * second) made the allocator hand out fresh pages and give them back, each page a fault
 * when written (about 10 µs on this project's VMs). The write is synchronous, so one
 * buffer serves every caller.
 */
export function writeText(fd: number, text: string): number {
  const worst = text.length * 3 // UTF-8 takes at most 3 bytes per UTF-16 unit
  if (kept.length < worst) {
    const need = worst <= KEPT_MAX ? worst : Buffer.byteLength(text)
    if (need > KEPT_MAX) {
      const own = Buffer.from(text)
      writeAll(fd, own)
      return own.length
    }
    if (kept.length < need) kept = Buffer.allocUnsafe(Math.min(KEPT_MAX, 2 ** Math.ceil(Math.log2(need))))
  }
  const n = kept.write(text, 0)
  writeAll(fd, kept.subarray(0, n))
  return n
}
