import { pbkdf2 } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { tempDir } from '../test/harness/engines.ts'
import { createWal, SPARE_DIR, walDir } from './wal.ts'
import { walThread } from './wal-thread.ts'

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
    expect(readdirSync(wal.dir).filter((f) => f !== SPARE_DIR)).toEqual(['t1.wal'])
    expect(wal.tokens()).toEqual(['t1'])
    expect(wal.read('t1')).toMatchObject({ token: 't1', requests, body, lines: ['a\tb', '\u00e9\t\u{1f600}'] })
    expect(wal.oldestMs()).toBe(statSync(join(wal.dir, 't1.wal')).mtimeMs)
    await wal.remove('t1')
    await wal.remove('t1') // already gone: no error
    expect(wal.tokens()).toEqual([])
    expect(wal.read('t1')).toBeUndefined()
    expect(wal.oldestMs()).toBeUndefined()
  })

  it('lives in an absolute folder, WAL_DIR resolved as given or `wal` under DATA_DIR (the engine is given its files by name)', () => {
    expect(walDir({ WAL_DIR: 'rel/log', dataDir: '/data' })).toBe(resolve('rel/log'))
    expect(walDir({ WAL_DIR: '/abs/log', dataDir: '/data' })).toBe('/abs/log')
    expect(walDir({ dataDir: '/data' })).toBe('/data/wal')
  })

  it('keeps load manifests until they are removed', async () => {
    const wal = setup()
    await wal.writeLoad('L1', ['t1', 't2'], 1_700_000_000_000)
    expect(wal.loads()).toEqual([{ token: 'L1', entries: ['t1', 't2'], at: 1_700_000_000_000 }])
    // A load the engine reads from the entries' files says so.
    await wal.writeLoad('L2', ['t3'], 1_700_000_000_001, true)
    expect(wal.loads().find((l) => l.token === 'L2')).toEqual({ token: 'L2', entries: ['t3'], at: 1_700_000_000_001, files: true })
    await wal.removeLoad('L1')
    await wal.removeLoad('L2')
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

  it('writes entries and manifests into spare files its thread made ready, and makes more', async () => {
    const wal = setup()
    const spareDir = join(wal.dir, SPARE_DIR)
    const spares = () => (existsSync(spareDir) ? readdirSync(spareDir).map((f) => ({ f, ino: statSync(join(spareDir, f)).ino })) : [])
    // The first write finds none ready: it makes its own file, and the thread makes three.
    await wal.write('t1', [request(1)], 'row1\n')
    await vi.waitFor(() => expect(walThread().sparesReady(join(wal.dir, SPARE_DIR))).toBe(3))
    const ready = () => spares().map((s) => s.ino)
    const beforeEntry = ready()
    expect(beforeEntry).toHaveLength(3)
    await wal.write('t2', [request(2)], 'row2\nrow3\n')
    // It took one of them (the same file, renamed into place), and the thread made another.
    expect(beforeEntry).toContain(statSync(join(wal.dir, 't2.wal')).ino)
    expect(ready()).not.toContain(statSync(join(wal.dir, 't2.wal')).ino)
    await vi.waitFor(() => expect(walThread().sparesReady(join(wal.dir, SPARE_DIR))).toBe(3))
    const beforeLoad = ready()
    await wal.writeLoad('L1', ['t1', 't2'], 1_700_000_000_000)
    expect(beforeLoad).toContain(statSync(join(wal.dir, 'L1.load')).ino)
    await vi.waitFor(() => expect(spares()).toHaveLength(3))
    expect(wal.read('t2')).toMatchObject({ token: 't2', lines: ['row2', 'row3'] })
    expect(wal.loads()).toEqual([{ token: 'L1', entries: ['t1', 't2'], at: 1_700_000_000_000 }])
    expect(wal.tokens().sort()).toEqual(['t1', 't2'])
  })

  it('at start-up drops the spare files with the torn writes, even those of a log made earlier over the folder in this process', async () => {
    const first = setup()
    const spareDir = join(first.dir, SPARE_DIR)
    await first.write('t1', [request(1)], 'row1\n')
    await vi.waitFor(() => expect(readdirSync(spareDir)).toHaveLength(3))
    // A restart in the same process: the new log's start-up removes every spare file.
    const again = createWal(first.dir)
    again.removeTorn()
    expect(existsSync(spareDir)).toBe(false)
    // It writes on (into its own file, then into new spares), and the first log's spares are never used.
    await again.write('t2', [request(1)], 'row2\n')
    await vi.waitFor(() => expect(readdirSync(spareDir)).toHaveLength(3))
    await again.write('t3', [request(1)], 'row3\n')
    expect([again.read('t2')?.lines, again.read('t3')?.lines]).toEqual([['row2'], ['row3']])
    await vi.waitFor(() => expect(readdirSync(spareDir)).toHaveLength(3))
  })

  it('leaves each descriptor to the thread that opened it: Node warns of none opened twice', async () => {
    const printed: string[] = []
    const write = process.stderr.write.bind(process.stderr)
    // The log's thread prints its warnings through this process's stderr.
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      printed.push(String(chunk))
      return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest)
    })
    onTestFinished(() => spy.mockRestore())
    const wal = setup()
    for (let i = 0; i < 30; i++) await wal.write(`t${i}`, [request(1)], `row${i}\n`)
    // A start-up over the folder drops the spares, then more writes take new ones.
    const again = createWal(wal.dir)
    again.removeTorn()
    for (let i = 30; i < 60; i++) await again.write(`t${i}`, [request(1)], `row${i}\n`)
    // The entries removed become spare files (as many as the folder keeps: 32), opened on the log's thread.
    await again.remove(...again.tokens())
    expect(walThread().sparesReady(join(wal.dir, SPARE_DIR))).toBe(32)
    for (let i = 60; i < 100; i++) await again.write(`t${i}`, [request(1)], `row${i}\n`)
    expect(printed.filter((p) => /File descriptor \d+/.test(p))).toEqual([])
  })

  it('turns the files of removed entries and manifests into spare files that later writes take, emptied', async () => {
    const wal = setup()
    const spareDir = join(wal.dir, SPARE_DIR)
    const ino = (f: string) => statSync(join(wal.dir, f)).ino
    const long = Array.from({ length: 200 }, (_, i) => `a long row ${i}\n`).join('')
    for (const t of ['t1', 't2', 't3']) await wal.write(t, [request(200)], long)
    await wal.writeLoad('L1', ['t1', 't2', 't3'], 1_700_000_000_000, true)
    await vi.waitFor(() => expect(walThread().sparesReady(spareDir)).toBe(3))
    const removed = [ino('t1.wal'), ino('t2.wal'), ino('t3.wal'), ino('L1.load')]
    await wal.remove('t1', 't2', 't3')
    await wal.removeLoad('L1')
    // Gone from the log's folder, kept as spare files (3 made ahead + the 4 removed), nothing else.
    expect(readdirSync(wal.dir).sort()).toEqual([SPARE_DIR])
    expect(wal.tokens()).toEqual([])
    expect(wal.loads()).toEqual([])
    expect(walThread().sparesReady(spareDir)).toBe(7)
    const spareInodes = readdirSync(spareDir).map((f) => statSync(join(spareDir, f)).ino)
    expect(spareInodes).toEqual(expect.arrayContaining(removed))
    for (const f of readdirSync(spareDir)) expect(statSync(join(spareDir, f)).size).toBe(0)
    // The next writes take the spare files last made ready first: the removed files, with none of their old bytes.
    await wal.write('t4', [request(1)], 'short\n')
    await wal.writeLoad('L2', ['t4'], 1_700_000_000_001)
    expect(removed).toContain(ino('t4.wal'))
    expect(removed).toContain(ino('L2.load'))
    expect(readFileSync(join(wal.dir, 't4.wal'), 'utf8')).toBe(`${JSON.stringify({ token: 't4', requests: wal.read('t4')!.requests })}\nshort\n`)
    expect(wal.read('t4')?.lines).toEqual(['short'])
    expect(wal.loads()).toEqual([{ token: 'L2', entries: ['t4'], at: 1_700_000_000_001 }])
  })

  it('removes entries whose folder is gone without an error (no spare folder is made for them)', async () => {
    const wal = setup()
    await wal.write('t1', [request(1)], 'row\n')
    rmSync(wal.dir, { recursive: true })
    await expect(wal.remove('t1')).resolves.toBeUndefined()
    expect(existsSync(wal.dir)).toBe(false)
  })

  it('keeps at most 32 spare files a folder: the rest of the files removed are deleted', async () => {
    const wal = setup()
    const spareDir = join(wal.dir, SPARE_DIR)
    const tokens = Array.from({ length: 40 }, (_, i) => `t${i}`)
    for (const t of tokens) await wal.write(t, [request(1)], 'row\n')
    await vi.waitFor(() => expect(walThread().sparesReady(spareDir)).toBe(3))
    await wal.remove(...tokens, 'never-written')
    expect(wal.tokens()).toEqual([])
    expect(walThread().sparesReady(spareDir)).toBe(32)
    expect(readdirSync(spareDir)).toHaveLength(32)
    // A start-up drops them all, as it drops the spare files made ahead.
    const again = createWal(wal.dir)
    again.removeTorn()
    expect(existsSync(spareDir)).toBe(false)
    await again.write('t50', [request(1)], 'row\n')
    expect(again.read('t50')?.lines).toEqual(['row'])
  })
})
