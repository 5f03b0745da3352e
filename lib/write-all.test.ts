import { closeSync, openSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { tempDir } from '../test/harness/engines.ts'
import { writeText } from './write-all.ts'

const dir = tempDir('cs-write-all-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The file's bytes after writing `texts` one after the other with writeText, and what each call returned. */
function written(name: string, texts: string[]): { bytes: Buffer; counts: number[] } {
  const file = join(dir, name)
  const fd = openSync(file, 'w')
  try {
    const counts = texts.map((t) => writeText(fd, t))
    return { bytes: readFileSync(file), counts }
  } finally {
    closeSync(fd)
  }
}

it('writes each text whole as UTF-8 through its kept buffer, a shorter text after a longer one included', () => {
  const long = 'a\tb\n'.repeat(300_000) // 1.2 MB: the kept buffer grows to it
  const texts = [long, '영상\t조회수 ✓\n', '😀 emoji\n', '', 'x'.repeat(10), long.slice(0, 7)]
  const { bytes, counts } = written('mixed', texts)
  expect(bytes.equals(Buffer.concat(texts.map((t) => Buffer.from(t))))).toBe(true)
  expect(counts).toEqual(texts.map((t) => Buffer.byteLength(t)))
})

it('writes a lone surrogate as U+FFFD, as Buffer.from does', () => {
  const text = `id\t${'\ud800'}\n`
  const { bytes } = written('surrogate', [text])
  expect(bytes.equals(Buffer.from(text))).toBe(true)
  expect(bytes.includes(Buffer.from([0xef, 0xbf, 0xbd]))).toBe(true)
})
