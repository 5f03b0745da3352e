import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pbkdf2, randomUUID } from 'node:crypto'
import { INSERTS_DIR } from './chdb-connection.ts'
import { engineTurnsOf, watchEmbeddedStatements, type StatementTiming } from './clickhouse.ts'
import { BACKGROUND_QUERY_PREFIX } from './engine-turns.ts'
import { rows, startTestClickHouse, type TestClickHouse } from '../test/harness/engines.ts'

let e: TestClickHouse
beforeAll(async () => {
  e = await startTestClickHouse()
  await e.ch.command({ query: 'CREATE TABLE scoped (x UInt32) ENGINE = MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = 100' })
})
afterAll(() => e.stop())

it('scopes a read-only setting to its own query in embedded mode', async () => {
  await expect(e.ch.command({ query: 'INSERT INTO scoped VALUES (1)', clickhouse_settings: { readonly: '1' } })).rejects.toThrow(/readonly/i)
  expect(await rows(e.ch, "SELECT toString(getSetting('readonly')) AS r", {})).toEqual([{ r: '0' }])
  await e.ch.command({ query: 'INSERT INTO scoped VALUES (2)' })
  expect(await rows(e.ch, 'SELECT x FROM scoped ORDER BY x')).toEqual([{ x: 2 }])
})

it('deduplicates a repeated insert by its token, and only that insert', async () => {
  const insert = (x: number, token?: string) =>
    e.ch.insert({ table: 'scoped', values: [{ x }], format: 'JSONEachRow', clickhouse_settings: token ? { insert_deduplication_token: token } : {} })
  await insert(10, 'tok-a')
  await insert(11, 'tok-a') // same token: dropped as a retry
  await insert(12) // no token: must not inherit tok-a
  expect(await rows(e.ch, 'SELECT x FROM scoped WHERE x >= 10 ORDER BY x')).toEqual([{ x: 10 }, { x: 12 }])
})

it('binds values as query parameters', async () => {
  expect(await rows(e.ch, 'SELECT {s:String} AS s, {n:UInt32} AS n', { s: "it's; DROP TABLE scoped", n: 7 })).toEqual([{ s: "it's; DROP TABLE scoped", n: 7 }])
})

it('merges the call settings into the statement SETTINGS clause', async () => {
  const rs = await e.ch.query({ query: "SELECT getSetting('max_threads') AS t, getSetting('max_block_size') AS b SETTINGS max_threads = 1", format: 'JSONEachRow', clickhouse_settings: { max_block_size: '1234' } })
  expect(await rs.json()).toEqual([{ t: 1, b: 1234 }])
})

it('runs SYSTEM statements, which take no SETTINGS clause', async () => {
  await e.ch.command({ query: 'SYSTEM STOP MERGES scoped' })
  try {
    await e.ch.command({ query: 'INSERT INTO scoped VALUES (100)' })
    await e.ch.command({ query: 'INSERT INTO scoped VALUES (101)' })
    // Merges stopped: OPTIMIZE is refused and the parts stay apart.
    await expect(e.ch.command({ query: 'OPTIMIZE TABLE scoped' })).rejects.toThrow(/Cancelled merging/)
    expect(await rows(e.ch, "SELECT count() > 1 AS many FROM system.parts WHERE active AND table = 'scoped'")).toEqual([{ many: 1 }])
  } finally {
    await e.ch.command({ query: 'SYSTEM START MERGES scoped' })
  }
})

it("reads an insert's data from a file in embedded mode, and leaves no file behind", async () => {
  const dir = join(e.dataDir, 'clickhouse', INSERTS_DIR)
  await e.ch.command({ query: 'CREATE TABLE from_file (k UInt32, s String) ENGINE = MergeTree ORDER BY k SETTINGS non_replicated_deduplication_window = 100' })
  const text = ['1\tplain\n', '2\ttab\\there, line\\nbreak, \\\\ and 한글 ✓\n']
  const insert = (values: Readable, token: string) =>
    e.ch.exec({ query: 'INSERT INTO from_file (k, s) FORMAT TabSeparated', values, clickhouse_settings: { insert_deduplication_token: token } }).then((r) => r.stream.destroy())
  // What the folder holds while the data is being read: the insert's own file.
  let during: string[] = []
  async function* chunks() {
    yield* text
    during = readdirSync(dir)
  }
  await insert(Readable.from(chunks(), { objectMode: true }), 'file-a')
  expect(during).toHaveLength(1)
  await insert(Readable.from(text, { objectMode: true }), 'file-a') // a retry: dropped by its token
  await e.ch.insert({ table: 'from_file', values: [{ k: 3, s: "it's" }], format: 'JSONEachRow' })
  await insert(Readable.from([], { objectMode: true }), 'file-empty') // no rows: a no-op, as before
  expect(await rows(e.ch, 'SELECT k, s FROM from_file ORDER BY k')).toEqual([
    { k: 1, s: 'plain' },
    { k: 2, s: 'tab\there, line\nbreak, \\ and 한글 ✓' },
    { k: 3, s: "it's" },
  ])
  // A bad row fails the whole insert with the engine's reason; nothing of it lands.
  await expect(insert(Readable.from(['4\tok\nfive\tbad\n'], { objectMode: true }), 'file-bad')).rejects.toThrow(/parse|Cannot|integer|five/i)
  expect(await rows(e.ch, 'SELECT count() AS n FROM from_file')).toEqual([{ n: '3' }])
  // Each file is removed after its insert, landed or not.
  expect(readdirSync(dir)).toEqual([])
})

it('runs a load after the reads sent before it ends, in embedded mode (the engine runs one statement at a time)', async () => {
  await e.ch.command({ query: 'CREATE TABLE turns (x UInt32) ENGINE = MergeTree ORDER BY x' })
  const count = () => rows<{ n: string }>(e.ch, 'SELECT count() AS n FROM turns')
  // A read under way for 150 ms, then a load, then a read sent while the load waits. The read lasts
  // less than the 200 ms a load waits at most, so the load is still held by its turn, not yet in the
  // line of statements sent to the engine, when the second read is sent.
  const turns = engineTurnsOf(e.ch)!
  const slow = rows(e.ch, 'SELECT sleep(0.15) AS s')
  await vi.waitFor(() => expect(turns.state).toEqual({ reads: 1, waiting: 0 }), { interval: 1, timeout: 5_000 })
  const load = e.ch
    .exec({ query: 'INSERT INTO turns FORMAT TabSeparated', query_id: `${BACKGROUND_QUERY_PREFIX}${randomUUID()}`, values: Readable.from(['1\n'], { objectMode: true }) })
    .then((r) => r.stream.destroy())
  // Held by its turn, not sent to the engine (fails without the turns: nothing ever waits).
  await vi.waitFor(() => expect(turns.state).toEqual({ reads: 1, waiting: 1 }), { interval: 1, timeout: 5_000 })
  // Sent after the load: in the engine's own order it would run after it and count its row.
  const during = count()
  expect(await during).toEqual([{ n: '0' }])
  await Promise.all([slow, load])
  expect(await count()).toEqual([{ n: '1' }])
  // A statement not marked as a load is a read: an insert without the prefix goes to the engine at once.
  const slow2 = rows(e.ch, 'SELECT sleep(0.2) AS s')
  await vi.waitFor(() => expect(turns.state).toEqual({ reads: 1, waiting: 0 }), { interval: 1, timeout: 5_000 })
  const plain = e.ch.exec({ query: 'INSERT INTO turns FORMAT TabSeparated', values: Readable.from(['2\n'], { objectMode: true }) }).then((r) => r.stream.destroy())
  await vi.waitFor(() => expect(turns.state).toEqual({ reads: 2, waiting: 0 }), { interval: 1, timeout: 5_000 })
  await Promise.all([slow2, plain])
  expect(await count()).toEqual([{ n: '2' }])
})

it('keeps statements waiting for the embedded engine out of the runtime\'s thread pool, and runs them in the order sent', async () => {
  // Node's pool has four threads. Five statements at once: the engine runs one at a time, and
  // those sent to it meanwhile each held a pool thread while they waited, so other pool work
  // (here a one-round hash; WebCrypto and file calls under Bun) waited for the first to end.
  const t0 = performance.now()
  const done: string[] = []
  const statements = [1, 2, 3, 4, 5].map((n) => rows<{ n: number }>(e.ch, 'SELECT sleep(0.3), {n:UInt8} AS n', { n }).then(([r]) => done.push(`statement ${r!.n}`)))
  await vi.waitFor(() => expect(engineTurnsOf(e.ch)!.state).toEqual({ reads: 5, waiting: 0 }), { interval: 1, timeout: 5_000 })
  await new Promise<void>((resolve, reject) => pbkdf2('secret', 'salt', 1, 32, 'sha256', (err) => (err ? reject(err) : (done.push('pool'), resolve()))))
  await Promise.all(statements)
  expect(done).toEqual(['pool', 'statement 1', 'statement 2', 'statement 3', 'statement 4', 'statement 5'])
  expect(performance.now() - t0).toBeGreaterThanOrEqual(1_500) // one after the other: nothing ran beside another
})

it('tells a watcher what each statement of the embedded engine took, reads and loads apart', async () => {
  const seen: StatementTiming[] = []
  const unwatch = watchEmbeddedStatements(e.ch, (t) => seen.push(t))
  expect(unwatch).toBeTypeOf('function')
  await rows(e.ch, 'SELECT sleep(0.05) AS slept')
  await e.ch.insert({ table: 'scoped', values: [{ x: 500 }], format: 'JSONEachRow', query_id: `${BACKGROUND_QUERY_PREFIX}${randomUUID()}` })
  expect(seen).toHaveLength(2)
  expect(seen[0]).toMatchObject({ kind: 'read', statement: expect.stringMatching(/^SELECT sleep\(0\.05\) AS slept\s+FORMAT JSONEachRow$/) })
  expect(seen[0]!.ms).toBeGreaterThanOrEqual(50)
  expect(seen[1]).toMatchObject({ kind: 'load', queryId: expect.stringMatching(new RegExp(`^${BACKGROUND_QUERY_PREFIX}`)), statement: expect.stringMatching(/^INSERT INTO scoped/) })
  expect(seen[1]!.waitedMs).toBeGreaterThanOrEqual(0)
  // A watcher that fails fails neither the statement nor the other watchers; one that stopped hears nothing more.
  const failing = watchEmbeddedStatements(e.ch, () => {
    throw new Error('watcher down')
  })
  expect(await rows(e.ch, 'SELECT 7 AS n')).toEqual([{ n: 7 }])
  expect(seen).toHaveLength(3)
  unwatch!()
  failing!()
  await rows(e.ch, 'SELECT 8 AS n')
  expect(seen).toHaveLength(3)
})
