import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { storedPositions } from '../analytics/playback/lookups.ts'
import { encodeRows, insertRawEvents, rowText } from '../ingest/events/rows.ts'
import type { PlaybackEvent } from '../ingest/events/schema.ts'
import type { PlaybackClaims } from '../ingest/tokens/playback.ts'
import { createClickHouse, type ClickHouseClient } from '../lib/clickhouse.ts'
import { rows, tempDir, testSettings } from '../test/harness/engines.ts'
import { loadMigrations, migrate } from './runner.ts'
import step from './0067_look_resume_positions_up_in_small_granules.ts'

const vars = { SETTLEMENT_TZ: 'Asia/Seoul' }
let dataDir: string
let ch: ClickHouseClient

const engine = async (name: string) =>
  (await rows<{ engine_full: string }>(ch, 'SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {name:String}', { name }))[0]?.engine_full
const comment = async () => (await rows<{ comment: string }>(ch, "SELECT comment FROM system.tables WHERE database = currentDatabase() AND name = 'resume_positions'"))[0]?.comment
/** Each pair's latest position (FINAL: the rebuild's merge keeps only those), in order. */
const stored = () => rows(ch, 'SELECT viewer_id, video_id, position_ms, toString(updated_at) AS at FROM resume_positions FINAL ORDER BY viewer_id, video_id')
const rowCount = async () => Number((await rows<{ n: string }>(ch, 'SELECT count() AS n FROM resume_positions'))[0]!.n)
const sqlOf = (version: number) => {
  const m = loadMigrations(vars).find((x) => x.version === version)
  if (!m || m.kind !== 'sql') throw new Error(`no SQL migration ${version}`)
  return m.sql
}

const t0 = Date.parse('2026-12-01T03:00:00Z')
/** A load of raw events (as the edge's loads go in, under a dedup token): each a viewer's event on a video at a position. */
async function load(token: string, events: { viewer: string; video: string; type: PlaybackEvent['type']; at: number; position: number }[]): Promise<void> {
  const texts = events.map((e) => {
    const claims: PlaybackClaims = { sub: e.viewer, vid: e.video, cid: 'c-1', sid: crypto.randomUUID(), ads: [], dur: 600_000, iat: 0, exp: 0 }
    const event = { id: crypto.randomUUID(), type: e.type, ts: t0 + e.at, position_ms: e.position, ...(e.type === 'progress' ? { watched_ms: 1_000 } : {}) } as PlaybackEvent
    return rowText({ claims, ip: '10.0.0.1', now: t0 + e.at }, { kind: 'event', event, decision: { outcome: 'counted', reason: '', credited: 0 } })
  })
  await insertRawEvents(ch, encodeRows(texts, token), token)
}
const pairs: [string, string][] = [
  ['d_a', 'v_1'],
  ['d_a', 'v_2'],
  ['d_b', 'v_1'],
  ['d_none', 'v_1'],
]

beforeAll(async () => {
  dataDir = tempDir('cs-ch-resume-')
  ch = createClickHouse(testSettings(dataDir))
  await migrate(ch, vars)
})

afterAll(async () => {
  await ch?.close()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('migration 0067: resume positions looked up in small granules', () => {
  it('leaves a new database with the table in 1,024-row granules of 4 KB blocks, its dedup window and comment kept', async () => {
    const e = await engine('resume_positions')
    expect(e).toContain('index_granularity = 1024')
    expect(e).toContain('min_compress_block_size = 4096')
    expect(e).toContain('non_replicated_deduplication_window = 10000')
    expect(await comment()).toMatch(/argMax/)
    expect(await engine('resume_positions__rebuild')).toBeUndefined()
  })

  it("rebuilds an old table with every pair's latest position, looked up as before, and the view writes into the new one, a repeated load once", async () => {
    // The table and its view as 0014 and 0015 made them (8,192-row granules), over several loads.
    await ch.command({ query: 'DROP VIEW resume_positions_mv SYNC' })
    await ch.command({ query: 'DROP TABLE resume_positions SYNC' })
    await ch.command({ query: sqlOf(14) })
    await ch.command({ query: sqlOf(15) })
    expect(await engine('resume_positions')).toContain('index_granularity = 8192')
    await load('load-1', [
      { viewer: 'd_a', video: 'v_1', type: 'play', at: 0, position: 0 },
      { viewer: 'd_a', video: 'v_1', type: 'progress', at: 10_000, position: 10_000 },
      { viewer: 'd_b', video: 'v_1', type: 'progress', at: 5_000, position: 5_000 },
    ])
    await load('load-2', [
      { viewer: 'd_a', video: 'v_1', type: 'seek', at: 20_000, position: 42_000 },
      { viewer: 'd_a', video: 'v_2', type: 'progress', at: 1_000, position: 1_000 },
      { viewer: 'd_b', video: 'v_1', type: 'end', at: 9_000, position: 600_000 },
    ])
    const rowsBefore = await stored()
    const before = await storedPositions(ch, pairs)
    expect(Object.fromEntries([...before].map(([k, v]) => [k, v.position_ms]))).toEqual({ '["d_a","v_1"]': 42_000, '["d_a","v_2"]': 1_000, '["d_b","v_1"]': 0 })

    await step.up(ch, { sqlOf })
    expect(await engine('resume_positions')).toContain('index_granularity = 1024')
    expect(await engine('resume_positions')).toContain('non_replicated_deduplication_window = 10000')
    expect(await engine('resume_positions__rebuild')).toBeUndefined()
    expect(await comment()).toMatch(/argMax/)
    expect(await stored()).toEqual(rowsBefore)
    expect(await storedPositions(ch, pairs)).toEqual(before)

    // The view, made again, writes into the rebuilt table; the same load again changes nothing.
    const later = [{ viewer: 'd_a', video: 'v_2', type: 'pause' as const, at: 30_000, position: 7_000 }]
    const rowsRebuilt = await rowCount()
    await load('load-3', later)
    await load('load-3', later)
    expect((await storedPositions(ch, [['d_a', 'v_2']])).get('["d_a","v_2"]')).toEqual({ position_ms: 7_000, at: t0 + 30_000 })
    expect(await rowCount()).toBe(rowsRebuilt + 1)

    // Run again (as after a crash past its last step), it finds the table rebuilt and leaves it.
    const rebuilt = await stored()
    await step.up(ch, { sqlOf })
    expect(await stored()).toEqual(rebuilt)
  })
})
