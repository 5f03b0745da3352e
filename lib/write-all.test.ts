import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { tempDir } from '../test/harness/engines.ts'
import { writeAllText } from './write-all.ts'

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
