import { pbkdf2 } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { tempDir } from '../test/harness/engines.ts'
import { createWal } from './wal.ts'

function setup() {
  const dir = tempDir('cs-wal-')
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return createWal(dir)
}

const request = (rows: number) => ({ videoId: 'v1', sessionId: 's1', requestId: crypto.randomUUID(), rows })

describe('the write-ahead log', () => {
  it('writes an entry durably under its token, reads it back as written, and removes it', async () => {
    const wal = setup()
    const body = 'a\tb\n\u00e9\t\u{1f600}\n'
    const requests = [request(1), request(1)]
    await wal.write('t1', requests, body)
    expect(readdirSync(wal.dir)).toEqual(['t1.wal'])
    expect(wal.tokens()).toEqual(['t1'])
    expect(wal.read('t1')).toMatchObject({ token: 't1', requests, body, lines: ['a\tb', '\u00e9\t\u{1f600}'] })
    expect(wal.oldestMs()).toBe(statSync(join(wal.dir, 't1.wal')).mtimeMs)
    await wal.remove('t1')
    await wal.remove('t1') // already gone: no error
    expect(wal.tokens()).toEqual([])
    expect(wal.read('t1')).toBeUndefined()
    expect(wal.oldestMs()).toBeUndefined()
  })

  it('keeps load manifests until they are removed', async () => {
    const wal = setup()
    await wal.writeLoad('L1', ['t1', 't2'], 1_700_000_000_000)
    expect(wal.loads()).toEqual([{ token: 'L1', entries: ['t1', 't2'], at: 1_700_000_000_000 }])
    await wal.removeLoad('L1')
    expect(wal.loads()).toEqual([])
  })

  it('finishes a write while every thread of the shared pool is busy: its fsyncs have a thread of their own', async () => {
    const wal = setup()
    // Node's pool has four threads (UV_THREADPOOL_SIZE); eight slow hashes hold all of them
    // for a while, as the embedded engine's statements hold Bun's.
    const order: string[] = []
    const busy = Array.from({ length: 8 }, () => new Promise<void>((resolve, reject) =>
      pbkdf2('secret', 'salt', 400_000, 64, 'sha512', (err) => (err ? reject(err) : (order.push('pool'), resolve()))),
    ))
    await wal.write('t1', [request(1)], 'row\n').then(() => order.push('log'))
    await Promise.all(busy)
    expect(order[0]).toBe('log')
    expect(wal.read('t1')?.lines).toEqual(['row'])
  })

  it('rejects a write it could not make durable with the reason, leaves nothing in place, and goes on writing', async () => {
    const wal = setup()
    rmSync(wal.dir, { recursive: true })
    await expect(wal.write('t1', [request(1)], 'row\n')).rejects.toThrow(/ENOENT/)
    expect(existsSync(join(wal.dir, 't1.wal'))).toBe(false)
    const again = createWal(wal.dir)
    await again.write('t2', [request(1)], 'row\n')
    expect(readFileSync(join(wal.dir, 't2.wal'), 'utf8').endsWith('\nrow\n')).toBe(true)
  })
})
