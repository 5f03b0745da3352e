import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { tempDir } from '../test/harness/engines.ts'
import { unwritten, writeAllText, writeAllv } from './write-all.ts'

it('writes a string whole as UTF-8 and gives its bytes', () => {
  const file = join(tempDir('write-all-'), 'out')
  const text = `héllo\t💥\n${'row\twith\ttabs\n'.repeat(200_000)}ünïcode at the end ✓`
  const fd = openSync(file, 'w')
  try {
    expect(writeAllText(fd, text)).toBe(Buffer.byteLength(text))
    expect(writeAllText(fd, '')).toBe(0)
  } finally {
    closeSync(fd)
  }
  expect(readFileSync(file, 'utf8')).toBe(text)
})

it('writes many buffers whole, in order, past writev\'s limit of 1,024 a call', () => {
  const file = join(tempDir('write-all-'), 'out')
  const bufs = Array.from({ length: 2_500 }, (_, i) => Buffer.from(i % 7 === 0 ? '' : `chunk ${i} ✓\n`.repeat(1 + (i % 5))))
  bufs.push(Buffer.alloc(3 * 1024 * 1024, 'x'))
  const fd = openSync(file, 'w')
  try {
    expect(writeAllv(fd, bufs)).toBe(Buffer.concat(bufs).length)
    expect(writeAllv(fd, [])).toBe(0)
  } finally {
    closeSync(fd)
  }
  expect(readFileSync(file).equals(Buffer.concat(bufs))).toBe(true)
})

it('after a short write, leaves exactly the bytes not written, wherever it stopped', () => {
  const bufs = [Buffer.from('abc'), Buffer.from(''), Buffer.from('de'), Buffer.from('fghi')]
  const whole = Buffer.concat(bufs).toString()
  for (let n = 0; n <= whole.length; n++) expect(Buffer.concat(unwritten(bufs, n)).toString(), `after ${n}`).toBe(whole.slice(n))
})
