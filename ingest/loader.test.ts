import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { tempDir } from '../test/harness/engines.ts'
import { createLoader, type LoaderOptions } from './loader.ts'
import { createWal, SPARE_DIR } from './wal.ts'

type Insert = { body: string; token: string; files?: readonly string[] }

/** A real write-ahead log in a temp folder and an in-memory store that can fail on demand. */
function setup(opts: Partial<LoaderOptions> & { failures?: number } = {}) {
  const dir = tempDir('cs-loader-')
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  const wal = createWal(dir)
  const inserts: Insert[] = []
  const attempts: Insert[] = []
  let failures = opts.failures ?? 0
  const loader = createLoader({
    wal,
    maxRows: 100,
    intervalMs: 3_600_000,
    backoffMs: () => 1,
    async insert(bodies, token, files) {
      const body = bodies.join('')
      attempts.push({ body, token, files })
      if (failures-- > 0) throw new Error('clickhouse is down')
      inserts.push({ body, token, files })
    },
    ...opts,
  })
  /** Logs an entry of `rows` rows as the edge does, then hands it to the loader. */
  const log = async (rows: number) => {
    const token = crypto.randomUUID()
    const body = Array.from({ length: rows }, (_, n) => JSON.stringify({ n }) + '\n').join('')
    await wal.write(token, [{ videoId: 'v', sessionId: 's', requestId: token, rows }], body)
    loader.enqueue({ token, body, rows })
    return { token, body }
  }
  /** The log's entries and manifests (not the spare files kept ready for the next ones). */
  const files = () => readdirSync(wal.dir).filter((f) => f !== SPARE_DIR).sort()
  return { wal, loader, inserts, attempts, log, files }
}

describe('the write-behind loader', () => {
  it('loads the first entry at once, then what queued meanwhile as one insert, and empties the log', async () => {
    const t = setup()
    const first = await t.log(2)
    const rest = [await t.log(3), await t.log(1), await t.log(4)]
    expect(await t.loader.drain()).toBe(true)
    expect(t.inserts.map((i) => i.body)).toEqual([first.body, rest.map((e) => e.body).join('')])
    expect(new Set(t.inserts.map((i) => i.token)).size).toBe(2)
    expect(t.files()).toEqual([])
    expect(t.loader.backlogRows).toBe(0)
  })

  it('never puts more than maxRows rows in one insert, unless one entry alone is larger', async () => {
    const t = setup({ maxRows: 5, intervalMs: 0 })
    for (const rows of [3, 3, 2, 7, 1]) await t.log(rows)
    await t.loader.drain()
    const sizes = t.inserts.map((i) => i.body.split('\n').filter(Boolean).length)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(16)
    for (const n of sizes) expect(n <= 5 || n === 7).toBe(true)
  })

  it('retries a failed insert with the same block and dedup token, and writes the manifest first', async () => {
    const t = setup({ failures: 2 })
    const e = await t.log(3)
    await t.loader.drain()
    expect(t.attempts).toHaveLength(3)
    expect(new Set(t.attempts.map((a) => a.token)).size).toBe(1)
    expect(new Set(t.attempts.map((a) => a.body))).toEqual(new Set([e.body]))
    expect(t.inserts).toHaveLength(1)
    expect(t.files()).toEqual([])
  })

  it("asks once a load whether the engine reads the entries' files, records the answer in the manifest, and inserts that way every time", async () => {
    const asked: (readonly string[])[] = []
    const manifests: unknown[] = []
    const t = setup({
      failures: 2,
      filesOf: (entries) => {
        asked.push(entries)
        return entries.length > 1 ? entries.map((e) => `/log/${e}.wal`) : undefined
      },
    })
    const writeLoad = t.wal.writeLoad
    t.wal.writeLoad = (...args) => (manifests.push(args.slice(0, 2).concat(args[3])), writeLoad(...args))
    const first = await t.log(1)
    const rest = [await t.log(2), await t.log(3)]
    await t.loader.drain()
    expect(asked).toEqual([[first.token], rest.map((e) => e.token)])
    expect(t.attempts.map((a) => a.files)).toEqual([undefined, undefined, undefined, rest.map((e) => `/log/${e.token}.wal`)])
    expect(manifests).toEqual([
      [expect.any(String), [first.token], false],
      [expect.any(String), rest.map((e) => e.token), true],
    ])
    expect(t.files()).toEqual([])
  })

  it('stops at a drain timeout and leaves the entries and the manifest of the unfinished load in the log', async () => {
    const t = setup({ failures: Infinity, backoffMs: () => 5 })
    const a = await t.log(2)
    const b = await t.log(2)
    expect(await t.loader.drain(30, true)).toBe(false)
    const loads = t.wal.loads()
    expect(loads).toHaveLength(1)
    expect(loads[0]!.entries).toEqual([a.token])
    expect(t.wal.read(a.token)?.body).toBe(a.body)
    expect(t.wal.read(b.token)?.body).toBe(b.body)
    expect(t.loader.holds(b.token)).toBe(true)
    expect(existsSync(join(t.wal.dir, `${loads[0]!.token}.load`))).toBe(true)
  })

  it('counts queued and loading rows as backlog until they are in', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const t = setup({ insert: () => gate })
    await t.log(4)
    await t.log(6)
    expect(t.loader.backlogRows).toBe(10)
    release()
    await t.loader.drain()
    expect(t.loader.backlogRows).toBe(0)
  })
})
