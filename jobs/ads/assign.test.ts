import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickHouse, watchEmbeddedStatements, type ClickHouseClient } from '../../lib/clickhouse.ts'
import { migrate } from '../../migrations/runner.ts'
import { rows, tempDir, testSettings } from '../../test/harness/engines.ts'
import { assignAds } from './assign.ts'

let dataDir: string
let ch: ClickHouseClient

const at = '2026-12-01 00:00:00'
const video = (video_id: string, duration_ms: number, deleted = 0) => ({ video_id, creator_id: 'u_1', title: video_id, duration_ms, created_at: at, updated_at: at, deleted })
const ad = (ad_id: string, contract_end: string) => ({ ad_id, advertiser: 'a', duration_ms: 15_000, contract_start: '2026-12-01', contract_end, created_at: at, updated_at: at, deleted: 0 })
const assignment = (video_id: string, ad_id: string, slot: string) => ({ video_id, ad_id, slot, assigned_at: at, retired_at: null, updated_at: at })
/** Active assignments, in order. */
const active = async () =>
  (await rows<{ video_id: string; ad_id: string; slot: string }>(ch, 'SELECT video_id, ad_id, slot FROM ad_assignments FINAL WHERE retired_at IS NULL ORDER BY video_id, ad_id, slot')).map(
    (r) => `${r.video_id}/${r.ad_id}/${r.slot}`,
  )

beforeAll(async () => {
  dataDir = tempDir('cs-ch-ad-assign-')
  ch = createClickHouse(testSettings(dataDir))
  await migrate(ch, { SETTLEMENT_TZ: 'Asia/Seoul' })
})

afterAll(async () => {
  await ch?.close()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('the whole-platform ad assignment, in passes of a few videos', () => {
  it('assigns every active ad to every video and retires what ended, each id in one pass, the same as in one pass', async () => {
    // Seven videos (v5 removed, v6 long enough for a mid-roll), two ads running and one ended; assignments of the
    // ended ad, of the removed video, and of a video id past every registered one's (it is not in `videos`).
    await ch.insert({ table: 'videos', format: 'JSONEachRow', values: ['v0', 'v1', 'v2', 'v3', 'v4'].map((id) => video(id, 60_000)).concat(video('v5', 60_000, 1), video('v6', 3_600_000)) })
    await ch.insert({ table: 'ads', format: 'JSONEachRow', values: [ad('ad_a', '2026-12-31'), ad('ad_b', '2026-12-31'), ad('ad_old', '2026-12-05')] })
    await ch.insert({ table: 'ad_assignments', format: 'JSONEachRow', values: [assignment('v1', 'ad_old', 'pre_roll'), assignment('v5', 'ad_a', 'pre_roll'), assignment('zz', 'ad_a', 'pre_roll'), assignment('v2', 'ad_a', 'pre_roll')] })

    const statements: string[] = []
    const stop = watchEmbeddedStatements(ch, (t) => statements.push(t.statement))
    const first = await assignAds(ch, { date: '2026-12-08', pageVideos: 2 })
    stop?.()
    // v1's ended ad, the removed v5's and zz's assignments retired; 2 ads on v0-v4 and on v6 in two slots, but v2/ad_a already.
    expect(first).toEqual({ date: '2026-12-08', retired: 3, assigned: 2 * 5 + 2 * 2 - 1 })
    expect(await active()).toEqual([
      ...['v0', 'v1', 'v2', 'v3', 'v4'].flatMap((v) => [`${v}/ad_a/pre_roll`, `${v}/ad_b/pre_roll`]),
      'v6/ad_a/mid_roll', 'v6/ad_a/pre_roll', 'v6/ad_b/mid_roll', 'v6/ad_b/pre_roll',
    ])
    // Passes of at most two videos' ids: ('', v1], (v1, v3], (v3, v5], (v5, …) with no bound, each ending looked up.
    expect(statements.filter((s) => s.includes('OFFSET')).length).toBe(4)

    // Nothing left: the same in passes of two or in one.
    expect(await assignAds(ch, { date: '2026-12-08', pageVideos: 2 })).toEqual({ date: '2026-12-08', retired: 0, assigned: 0 })
    expect(await assignAds(ch, { date: '2026-12-08', pageVideos: 1_000 })).toEqual({ date: '2026-12-08', retired: 0, assigned: 0 })
    // One video alone: one pass, no ending looked up.
    const single: string[] = []
    const stopSingle = watchEmbeddedStatements(ch, (t) => single.push(t.statement))
    expect(await assignAds(ch, { date: '2027-01-02', videoId: 'v3', pageVideos: 2 })).toEqual({ date: '2027-01-02', retired: 2, assigned: 0 })
    stopSingle?.()
    expect(single.some((s) => s.includes('OFFSET'))).toBe(false)
  })
})
