import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { tempDir } from '../test/harness/engines.ts'
import { SCRATCH_MAX_BYTES, writeAllText } from './write-all.ts'

/** Writes the texts one after another into a new file; returns what each call gave and what the file holds. */
function writeTexts(texts: string[]): { bytes: number[]; file: string } {
  const file = join(tempDir('write-all-'), 'out')
  const fd = openSync(file, 'w')
  try {
    return { bytes: texts.map((t) => writeAllText(fd, t)), file: readFileSync(file, 'utf8') }
  } finally {
    closeSync(fd)
  }
}

it('writes a string whole as UTF-8 and gives its bytes', () => {
  const text = `héllo\t💥\n${'row\twith\ttabs\n'.repeat(200_000)}ünïcode at the end ✓`
  const { bytes, file } = writeTexts([text, ''])
  expect(bytes).toEqual([Buffer.byteLength(text), 0])
  expect(file).toBe(text)
})

it('writes only each text\'s own bytes from its kept buffer, short after long, growing it as needed, and a text past its bound as it is', () => {
  const long = `${'ü'.repeat(300_000)}\n`
  const short = 'a\tb\n'
  const longer = `${'row\t💥\n'.repeat(400_000)}`
  const past = `${'x'.repeat(Math.ceil(SCRATCH_MAX_BYTES / 3) + 1)}✓\n`
  const texts = [short, long, short, longer, past, short]
  const { bytes, file } = writeTexts(texts)
  expect(bytes).toEqual(texts.map((t) => Buffer.byteLength(t)))
  expect(file).toBe(texts.join(''))
})
