import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startTestEdge, type TestEdge } from '../test/harness/edge.ts'
import { rows as query, tempDir } from '../test/harness/engines.ts'
import { FAILING_VIDEO_PREFIX, videoSnapshot, withFailingView } from '../test/harness/snapshot.ts'
import { countingCalls } from '../test/harness/counting.ts'
import { watchEmbeddedStatements } from '../lib/clickhouse.ts'
import { encodeRows, infilePattern, insertRawEventFiles, insertRawEvents, parseRow, RAW_COLUMNS, rowContext, rowText } from './events/rows.ts'
import { insertOrSetAside, MAX_SET_ASIDE, unreadableLines, type SetAside } from './set-aside.ts'
import type { PlaybackClaims } from './tokens/playback.ts'
import { createWal, walDir } from './wal.ts'

/**
 * Lines ClickHouse cannot read are set aside and the rest of their load goes in: one bad
 * line must not hold every later load up (the edge would turn to 503s), and nothing may
 * be counted twice however often the load is retried.
 */
let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge()
})
afterAll(() => t.stop())

const POSITION = RAW_COLUMNS.indexOf('position_ms')
/** `n` rows of one viewer's session of `video`: a play, then progress; `bad` lines get a position the engine cannot read. */
function lines(video: string, n: number, bad: number[] = []): string[] {
  const claims = { vid: video, cid: `c-${video}`, sub: `w-${video}`, sid: crypto.randomUUID(), dur: 600_000, ads: [], iat: 1, exp: 2 } as unknown as PlaybackClaims
  const now = Date.now()
  const ctx = rowContext({ claims, ip: '10.7.0.1', now })
  return Array.from({ length: n }, (_, i) => {
    const event = i === 0 ? { id: crypto.randomUUID(), type: 'play' as const, ts: now - 60_000, position_ms: 0 } : { id: crypto.randomUUID(), type: 'progress' as const, ts: now - 60_000 + i * 1_000, position_ms: i * 1_000, watched_ms: 1_000 }
    const line = rowText(ctx, { kind: 'event', event, decision: { outcome: 'counted', reason: '', credited: i === 0 ? 0 : 1_000 } })
    return bad.includes(i) ? line.split('\t').map((v, c) => (c === POSITION ? 'five' : v)).join('\t') : line
  })
}
const text = (rows: string[], token: string) => encodeRows(rows, token)
const uniq = () => `aside-${crypto.randomUUID().slice(0, 8)}`
const recording = () => {
  const calls: { token: string; lines: string[]; error: string }[] = []
  const setAside: SetAside = async (token, lines, error) => void calls.push({ token, lines, error })
  return { calls, setAside }
}

describe('lines the engine cannot read', () => {
  it('are set aside and the rest of the block goes in under its token; a repeat of the block adds nothing', async () => {
    const video = uniq()
    const entry = crypto.randomUUID()
    const rows = lines(video, 12, [3, 10])
    const body = text(rows, entry)
    const load = crypto.randomUUID()
    const first = recording()
    expect(await insertOrSetAside(t.s.ch, body, load, first.setAside)).toBe(2)
    expect(first.calls).toHaveLength(1)
    expect(first.calls[0]!.token).toBe(load)
    expect(first.calls[0]!.lines).toEqual([`${rows[3]}${entry}`, `${rows[10]}${entry}`])
    expect(first.calls[0]!.error).toMatch(/parse|read/i)
    const once = await videoSnapshot(t.s.ch, video)
    expect(once.rawIds).toEqual([{ n: 10, ids: 10 }])
    expect(once.day).toEqual([expect.objectContaining({ views: 1, watch_ms: 9_000, unique_viewers: 1 })])
    // A retry of the same load (the loader's, or the repair's after a crash), whole or in pieces.
    const again = recording()
    expect(await insertOrSetAside(t.s.ch, body.split(/(?<=\n)/), load, again.setAside)).toBe(2)
    expect(again.calls.map((c) => c.lines)).toEqual(first.calls.map((c) => c.lines))
    expect(await videoSnapshot(t.s.ch, video)).toEqual(once)
  })

  it('are found one by one among many good ones, and a search that would run long gives up', async () => {
    const rows = lines(uniq(), 300, [0, 150, 299])
    expect(await unreadableLines(t.s.ch, rows)).toEqual([0, 150, 299])
    expect(await unreadableLines(t.s.ch, rows, 8)).toBeUndefined()
    expect(await unreadableLines(t.s.ch, lines(uniq(), 5))).toBeUndefined()
  })

  it('leave an error that is not the data’s to the caller’s retries, setting nothing aside', async () => {
    const video = uniq()
    const rec = recording()
    await t.s.ch.command({ query: 'DETACH TABLE raw_events' })
    try {
      await expect(insertOrSetAside(t.s.ch, text(lines(video, 3, [1]), 'e'), crypto.randomUUID(), rec.setAside)).rejects.toThrow()
    } finally {
      await t.s.ch.command({ query: 'ATTACH TABLE raw_events' })
    }
    expect(rec.calls).toEqual([])
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 0, ids: 0 }])
  })

  it('are not set aside when there are more than a few: that is a mismatch for an operator, and the error stays', async () => {
    const video = uniq()
    const rec = recording()
    const many = lines(video, 200, Array.from({ length: MAX_SET_ASIDE + 1 }, (_, i) => i * 9))
    const load = crypto.randomUUID()
    const fruitless = new Set<string>()
    const statements: unknown[] = []
    const ch = countingCalls(t.s.ch, 'exec', statements)
    await expect(insertOrSetAside(ch, text(many, 'e'), load, rec.setAside, fruitless)).rejects.toMatchObject({ type: expect.stringMatching(/^CANNOT_PARSE/) })
    expect(rec.calls).toEqual([])
    expect(statements.length).toBeGreaterThan(MAX_SET_ASIDE)
    // Its retry is not searched again.
    statements.length = 0
    await expect(insertOrSetAside(ch, text(many, 'e'), load, rec.setAside, fruitless)).rejects.toMatchObject({ type: expect.stringMatching(/^CANNOT_PARSE/) })
    expect(statements).toHaveLength(1)
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 0, ids: 0 }])
    const few = lines(video, 200, Array.from({ length: MAX_SET_ASIDE }, (_, i) => i * 9))
    expect(await insertOrSetAside(t.s.ch, text(few, 'e'), crypto.randomUUID(), rec.setAside)).toBe(MAX_SET_ASIDE)
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 200 - MAX_SET_ASIDE, ids: 200 - MAX_SET_ASIDE }])
  })
})

describe('the edge with a line the engine cannot read in its log', () => {
  const asideFiles = () => {
    const dir = createWal(walDir(t.s.settings)).setAsideDir
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.tsv')) : []
  }
  const setAsideRows = async () => (await t.s.metrics.rowsSetAside.get()).values[0]?.value ?? 0
  const log = async (video: string, n: number, bad: number[] = []) => {
    const wal = createWal(walDir(t.s.settings))
    const token = crypto.randomUUID()
    const body = text(lines(video, n, bad), token)
    await wal.write(token, [{ videoId: video, sessionId: 's', requestId: `r-${token}`, rows: n }], body)
    return { token, body, rows: n }
  }

  it('loads the rest of the load it was in and every load after it, and keeps the line in set-aside/', async () => {
    const video = uniq()
    const before = { files: asideFiles().length, rows: await setAsideRows() }
    const entries = [await log(video, 4), await log(video, 5, [2]), await log(video, 3)]
    for (const e of entries) t.edge.loader.enqueue(e)
    expect(await t.edge.loader.drain(30_000)).toBe(true)
    const after = await log(video, 2)
    t.edge.loader.enqueue(after)
    expect(await t.edge.loader.drain(30_000)).toBe(true)
    const loaded = await videoSnapshot(t.s.ch, video)
    expect(loaded.rawIds).toEqual([{ n: 13, ids: 13 }])
    // Four sessions' plays, and a second of progress a line but for the one set aside.
    expect(loaded.day).toEqual([expect.objectContaining({ views: 4, watch_ms: 9_000 })])
    expect(await setAsideRows()).toBe(before.rows + 1)
    const wal = createWal(walDir(t.s.settings))
    expect(wal.tokens().filter((x) => entries.some((e) => e.token === x))).toEqual([])
    expect(wal.loads()).toEqual([])
    const files = asideFiles()
    expect(files).toHaveLength(before.files + 1)
    const kept = files.map((f) => readFileSync(join(wal.setAsideDir, f), 'utf8')).find((s) => s.includes(entries[1]!.token))!
    const [head, line, end] = kept.split('\n')
    expect(JSON.parse(head!)).toMatchObject({ rows: 1, columns: [...RAW_COLUMNS], error: expect.stringMatching(/./) })
    expect(line).toBe(entries[1]!.body.split('\n')[2])
    expect(end).toBe('')
    // Mended and loaded the way the README tells an operator to.
    const file = join(wal.setAsideDir, files.find((f) => readFileSync(join(wal.setAsideDir, f), 'utf8').includes(entries[1]!.token))!)
    writeFileSync(file, kept.replace('\tfive\t', '\t2000\t'))
    const columns = (JSON.parse(head!) as { columns: string[] }).columns.join(', ')
    await t.s.ch.command({
      // The settings go in the statement's one SETTINGS clause, before FORMAT, as in the README.
      query: `INSERT INTO raw_events (${columns}) FROM INFILE '${file}' FORMAT TabSeparated`,
      clickhouse_settings: { input_format_tsv_skip_first_lines: '1', date_time_input_format: 'basic' },
    })
    const mended = await videoSnapshot(t.s.ch, video)
    expect(mended.rawIds).toEqual([{ n: 14, ids: 14 }])
    expect(mended.day).toEqual([expect.objectContaining({ views: 4, watch_ms: 10_000 })])
  })

  it('lets the repair finish a load left by a crash that holds such a line, without counting anything twice', async () => {
    const video = uniq()
    const wal = createWal(walDir(t.s.settings))
    const entries = [await log(video, 3, [0]), await log(video, 4)]
    const load = crypto.randomUUID()
    const counted = await setAsideRows()
    await wal.writeLoad(load, entries.map((e) => e.token))
    expect(await t.edge.repair()).toBeGreaterThanOrEqual(1)
    const once = await videoSnapshot(t.s.ch, video)
    expect(once.rawIds).toEqual([{ n: 6, ids: 6 }])
    expect(wal.loads().filter((l) => l.token === load)).toEqual([])
    expect(asideFiles()).toContain(`${load}.tsv`)
    // Crashed again after the insert, before the log was cleaned: the repair runs the load once more.
    for (const e of entries) await wal.write(e.token, [{ videoId: video, sessionId: 's', requestId: `r-${e.token}`, rows: e.rows }], e.body)
    await wal.writeLoad(load, entries.map((e) => e.token))
    await t.edge.repair()
    expect(await videoSnapshot(t.s.ch, video)).toEqual(once)
    // The same line set aside twice is counted once.
    expect(await setAsideRows()).toBe(counted + 1)
  })
})

describe('loads the engine reads from the log\'s entries', () => {
  /** A log in a folder of its own with entries of `video`, `sizes` rows each (`bad`: lines of the second the engine cannot read). */
  const logged = async (video: string, sizes: number[], bad: number[] = []) => {
    const dir = tempDir('cs-infile-')
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const wal = createWal(dir)
    const entries: { token: string; body: string }[] = []
    for (const [i, n] of sizes.entries()) {
      const token = crypto.randomUUID()
      const body = text(lines(video, n, i === 1 ? bad : []), token)
      await wal.write(token, [{ videoId: video, sessionId: 's', requestId: `r-${token}`, rows: n }], body)
      entries.push({ token, body })
    }
    return { wal, entries, files: entries.map((e) => wal.file(e.token)), body: entries.map((e) => e.body).join('') }
  }
  const byId = (a: { event_id: string }, b: { event_id: string }) => (a.event_id < b.event_id ? -1 : 1)
  const stored = async (video: string) =>
    (await query<{ event_id: string }>(t.s.ch, 'SELECT event_id, type, credited_watch_ms, insert_token FROM raw_events WHERE video_id = {v:String}', { v: video })).sort(byId)

  it('hold the same rows as their text, each entry read after its JSON line, as one block under the load token: a repeat from the files adds nothing', async () => {
    const video = uniq()
    const { files, body } = await logged(video, [3, 5, 4])
    const load = crypto.randomUUID()
    await insertRawEventFiles(t.s.ch, files, load)
    const expected = body
      .split('\n')
      .filter(Boolean)
      .map(parseRow)
      .map((r) => ({ event_id: r.event_id, type: r.type, credited_watch_ms: String(r.credited_watch_ms), insert_token: r.insert_token }))
      .sort(byId)
    expect(await stored(video)).toEqual(expected)
    const once = await videoSnapshot(t.s.ch, video)
    expect(once.rawIds).toEqual([{ n: 12, ids: 12 }])
    expect(once.day).toEqual([expect.objectContaining({ views: 3, watch_ms: 9_000, unique_viewers: 1 })])
    await insertRawEventFiles(t.s.ch, files, load)
    expect(await videoSnapshot(t.s.ch, video)).toEqual(once)
    // One file alone is named as it is.
    const single = await logged(uniq(), [2])
    expect(infilePattern(single.files)).toBe(single.files[0])
  })

  it('are keyed by the engine apart from the same rows sent as one text: why every insert of a load goes one way (WalLoad.files)', async () => {
    const video = uniq()
    const { files, body } = await logged(video, [2, 2])
    const load = crypto.randomUUID()
    await insertRawEventFiles(t.s.ch, files, load)
    await insertRawEvents(t.s.ch, body, load)
    // Were this ever 4, a load could be repeated either way and the manifest's `files` could go.
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 8, ids: 4 }])
  })

  it('are not named when a file is missing or its path would be misread: the insert refuses, having done nothing', async () => {
    const video = uniq()
    const { wal, entries, files, body } = await logged(video, [2, 3])
    expect(infilePattern(files)).toBe(`${wal.dir}/{${entries.map((e) => `${e.token}.wal`).join(',')}}`)
    for (const odd of [
      [files[0]!, `${wal.dir}/missing.wal`],
      [files[0]!.replace(wal.dir, `${wal.dir}/../${wal.dir.split('/').at(-1)}`), files[1]!],
      [`${wal.dir}/a,b.wal`],
      [`${wal.dir}/{a}.wal`],
      [`${wal.dir}/it's.wal`],
      [`relative/${entries[0]!.token}.wal`],
      [],
    ])
      expect(infilePattern(odd)).toBeUndefined()
    for (const dir of ['/tmp/with space', "/tmp/quo'te", '/tmp/glob*', '/tmp/br{a,c}e']) expect(infilePattern([`${dir}/x.wal`])).toBeUndefined()
    rmSync(files[1]!)
    const rec = recording()
    await expect(insertRawEventFiles(t.s.ch, files, crypto.randomUUID())).rejects.toThrow(/cannot be read by name/)
    await expect(insertOrSetAside(t.s.ch, body, crypto.randomUUID(), rec.setAside, undefined, files)).rejects.toThrow(/cannot be read by name/)
    expect(rec.calls).toEqual([])
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 0, ids: 0 }])
  })

  it('with a line the engine cannot read: nothing of the load lands from the files; its text is searched and the rest goes in under the token', async () => {
    const video = uniq()
    const { entries, files, body } = await logged(video, [3, 4, 2], [1])
    const load = crypto.randomUUID()
    await expect(insertRawEventFiles(t.s.ch, files, load)).rejects.toMatchObject({ type: expect.stringMatching(/^CANNOT_PARSE/) })
    await expect(insertRawEventFiles(t.s.ch, files.slice(0, 2), load)).rejects.toMatchObject({ type: expect.stringMatching(/^CANNOT_PARSE/) })
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 0, ids: 0 }])
    const rec = recording()
    expect(await insertOrSetAside(t.s.ch, body, load, rec.setAside, undefined, files)).toBe(1)
    expect(rec.calls.map((c) => c.lines)).toEqual([[entries[1]!.body.split('\n')[1]]])
    const once = await videoSnapshot(t.s.ch, video)
    expect(once.rawIds).toEqual([{ n: 8, ids: 8 }])
    expect(await insertOrSetAside(t.s.ch, body, load, recording().setAside, undefined, files)).toBe(1)
    expect(await videoSnapshot(t.s.ch, video)).toEqual(once)
  })

  it('of a load cut between raw_events and a view are read again by the repair, as its manifest says: raw_events keeps its rows once, the views get theirs', async () => {
    const video = `${FAILING_VIDEO_PREFIX}${crypto.randomUUID().slice(0, 8)}`
    const wal = createWal(walDir(t.s.settings))
    const entries: { token: string; rows: number }[] = []
    for (const n of [2, 3]) {
      const token = crypto.randomUUID()
      await wal.write(token, [{ videoId: video, sessionId: 's', requestId: `r-${token}`, rows: n }], text(lines(video, n), token))
      entries.push({ token, rows: n })
    }
    const load = crypto.randomUUID()
    await wal.writeLoad(load, entries.map((e) => e.token), Date.now(), true)
    await withFailingView(t.s.ch, () => expect(insertRawEventFiles(t.s.ch, entries.map((e) => wal.file(e.token)), load)).rejects.toThrow(/simulated crash/))
    const cut = await videoSnapshot(t.s.ch, video)
    expect(cut.rawIds).toEqual([{ n: 5, ids: 5 }])
    expect([cut.day, cut.week, cut.month].some((g) => g.length === 0)).toBe(true)
    expect(await t.edge.repair()).toBeGreaterThanOrEqual(1)
    const whole = await videoSnapshot(t.s.ch, video)
    expect(whole.rawIds).toEqual([{ n: 5, ids: 5 }])
    for (const grain of [whole.day, whole.week, whole.month]) expect(grain).toEqual([expect.objectContaining({ views: 2, watch_ms: 3_000, unique_viewers: 1 })])
    expect(wal.loads().filter((l) => l.token === load)).toEqual([])
    expect(wal.tokens().filter((x) => entries.some((e) => e.token === x))).toEqual([])
  })

  it("are how the embedded edge's loader inserts: its statement names the log's entries", async () => {
    const seen: string[] = []
    const stop = watchEmbeddedStatements(t.s.ch, (s) => void (s.kind === 'load' && seen.push(s.statement)))!
    try {
      const token = await t.token({ videoId: uniq() })
      expect((await t.post(token, [{ id: crypto.randomUUID(), type: 'play', ts: Date.now(), position_ms: 0 }])).status).toBe(200)
    } finally {
      stop()
    }
    const dir = walDir(t.s.settings)
    expect(seen.some((q) => q.includes(`FROM INFILE '${dir}/`) && /\.wal[}']/.test(q))).toBe(true)
  })
})
