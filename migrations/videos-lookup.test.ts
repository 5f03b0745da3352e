import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getVideos, insertVideo } from '../analytics/videos/store.ts'
import { createClickHouse, type ClickHouseClient } from '../lib/clickhouse.ts'
import { rows, tempDir, testSettings } from '../test/harness/engines.ts'
import { loadMigrations, migrate } from './runner.ts'
import step from './0066_look_videos_up_in_small_granules.ts'

const vars = { SETTLEMENT_TZ: 'Asia/Seoul' }
let dataDir: string
let ch: ClickHouseClient

const engine = async (name: string) =>
  (await rows<{ engine_full: string }>(ch, 'SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {name:String}', { name }))[0]?.engine_full
/** Every version of every video, in order: what the table holds whatever its engine. */
const versions = () => rows(ch, 'SELECT video_id, creator_id, title, duration_ms, toString(updated_at) AS v, deleted FROM videos ORDER BY video_id, updated_at')
const comment = async () => (await rows<{ comment: string }>(ch, "SELECT comment FROM system.tables WHERE database = currentDatabase() AND name = 'videos'"))[0]?.comment
const sqlOf = (version: number) => {
  const m = loadMigrations(vars).find((x) => x.version === version)
  if (!m || m.kind !== 'sql') throw new Error(`no SQL migration ${version}`)
  return m.sql
}

/** A version of a video's row, registered on 1 December unless `created` says otherwise. */
const row = (video_id: string, creator_id: string, title: string, updated: string, deleted = 0, created = '2026-12-01') => ({
  video_id,
  creator_id,
  title,
  duration_ms: 1000,
  created_at: `${created} 00:00:00`,
  updated_at: `${updated} 00:00:00`,
  deleted,
})
/** `table` created as migration 0016 made `videos` (8,192-row granules), holding `content`. */
async function oldTable(table: string, content: ReturnType<typeof row>[]): Promise<void> {
  await ch.command({ query: `DROP TABLE IF EXISTS ${table} SYNC` })
  await ch.command({ query: sqlOf(16).replace(/\bvideos\b/, table) })
  await ch.insert({ table, format: 'JSONEachRow', values: content })
}
/** `videos` as 0016 made it, holding three videos: one renamed, one removed. */
const oldVideos = () =>
  oldTable('videos', [
    row('v_a', 'u_1', 'first', '2026-12-01'),
    row('v_a', 'u_1', 'renamed', '2026-12-02'),
    row('v_b', 'u_2', 'kept', '2026-12-01'),
    row('v_c', 'u_2', 'gone', '2026-12-01'),
    row('v_c', 'u_2', 'gone', '2026-12-03', 1),
  ])

beforeAll(async () => {
  dataDir = tempDir('cs-ch-videos-')
  ch = createClickHouse(testSettings(dataDir))
  await migrate(ch, vars)
})

afterAll(async () => {
  await ch?.close()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('migration 0066: videos looked up in small granules', () => {
  it('leaves a new database with the table in 256-row granules of 4 KB blocks, its comment kept', async () => {
    const e = await engine('videos')
    expect(e).toContain('index_granularity = 256')
    expect(e).toContain('min_compress_block_size = 4096')
    expect(await comment()).toMatch(/FINAL/)
    expect(await engine('videos__rebuild')).toBeUndefined()
  })

  it('rebuilds an old table with every version of every video, which are looked up as before', async () => {
    await oldVideos()
    const before = await versions()
    const found = await getVideos(ch, ['v_a', 'v_b', 'v_c'])
    expect(await engine('videos')).toContain('index_granularity = 8192')
    await step.up(ch)
    expect(await engine('videos')).toContain('index_granularity = 256')
    expect(await engine('videos__rebuild')).toBeUndefined()
    // The copy merged each video's versions into its latest; reads see the same videos.
    expect(await getVideos(ch, ['v_a', 'v_b', 'v_c'])).toEqual(found)
    expect(found.map((v) => [v.video_id, v.title])).toEqual([
      ['v_a', 'renamed'],
      ['v_b', 'kept'],
    ])
    expect((await versions()).length).toBeLessThanOrEqual(before.length)
    // Registered after: found at once.
    const v = await insertVideo(ch, { creatorId: 'u_3', title: 'new', durationMs: 4000 })
    expect(await getVideos(ch, [v.video_id])).toEqual([v])
  })

  it('after a crash before the exchange, drops the partial copy and rebuilds', async () => {
    await oldVideos()
    await ch.command({ query: "CREATE TABLE videos__rebuild AS videos ENGINE = ReplacingMergeTree(updated_at) ORDER BY video_id SETTINGS index_granularity = 256" })
    await ch.command({ query: "INSERT INTO videos__rebuild SELECT * FROM videos WHERE video_id = 'v_a'" })
    const found = await getVideos(ch, ['v_a', 'v_b', 'v_c'])
    await step.up(ch)
    expect(await engine('videos')).toContain('index_granularity = 256')
    expect(await engine('videos__rebuild')).toBeUndefined()
    expect(await getVideos(ch, ['v_a', 'v_b', 'v_c'])).toEqual(found)
  })

  it('after a crash past the exchange, or with videos registered or changed while the copy was made, copies them over from the old table', async () => {
    await oldVideos()
    await step.up(ch)
    // The old table as the exchange left it, holding what was written to it during the copy:
    // a new video, a new version of one, and a removal.
    await oldTable('videos__rebuild', [
      row('v_a', 'u_1', 'renamed', '2026-12-02'),
      row('v_b', 'u_2', 'kept again', '2026-12-04'),
      row('v_d', 'u_4', 'during', '2026-12-04', 0, '2026-12-04'),
      row('v_a', 'u_1', 'renamed', '2026-12-05', 1),
    ])
    expect(await engine('videos__rebuild')).toContain('index_granularity = 8192')
    await step.up(ch)
    expect(await engine('videos__rebuild')).toBeUndefined()
    expect((await getVideos(ch, ['v_a', 'v_b', 'v_c', 'v_d'])).map((v) => [v.video_id, v.title])).toEqual([
      ['v_b', 'kept again'],
      ['v_d', 'during'],
    ])
    // A version the new table held already was not copied again.
    expect((await versions()).filter((r) => (r as { video_id: string; v: string }).video_id === 'v_a' && (r as { v: string }).v.startsWith('2026-12-02'))).toHaveLength(1)
  })
})
