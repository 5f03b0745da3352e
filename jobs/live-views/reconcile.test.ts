import { afterAll, beforeAll, expect, it } from 'vitest'
import { keys } from '../../ingest/state/keys.ts'
import { watchEmbeddedStatements } from '../../lib/clickhouse.ts'
import { ev, startTestEdge, type TestEdge } from '../../test/harness/edge.ts'
import { rows } from '../../test/harness/engines.ts'
import { reconcileLiveViews } from './reconcile.ts'

let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge({ MAX_VIEWS_PER_IP: '100' })
})
afterAll(() => t.stop())

const views = async (video: string, n: number) => {
  for (let i = 0; i < n; i++) {
    const token = await t.token({ videoId: video, viewerId: `viewer-${i}` }, { now: new Date(Date.now() - 60_000) })
    expect((await t.post(token, [ev('play', { ts: Date.now() - 1_000 })])).status).toBe(200)
  }
}

it('restores a live counter that Redis lost, and lowers one that counted an event never stored', async () => {
  await views('lost', 3)
  await views('over', 2)
  await t.s.redis.del(keys.liveViews('lost'))
  await t.s.redis.incrby(keys.liveViews('over'), 5)
  const result = await reconcileLiveViews(t.s, { settleMs: 0 })
  expect(result).toEqual({ videos: 2, corrected: 2 })
  expect(await t.s.redis.get(keys.liveViews('lost'))).toBe('3')
  expect(await t.s.redis.get(keys.liveViews('over'))).toBe('2')
  expect(await reconcileLiveViews(t.s)).toEqual({ videos: 2, corrected: 0 })
})

it('takes the videos in shares and batches, each statement after the reads under way, and sums every month of a video', async () => {
  await views('a', 1)
  await views('b', 2)
  await views('c', 3)
  // Views of 'c' in an earlier month, by the same creator as its events' rows (rows of this month give it).
  await t.s.ch.command({
    query: `INSERT INTO video_stats_per_month (month, creator_id, video_id, views)
            SELECT toStartOfMonth(today() - 62), creator_id, video_id, 10 FROM video_stats_per_month WHERE video_id = 'c' LIMIT 1`,
  })
  for (const v of ['a', 'b', 'c']) await t.s.redis.del(keys.liveViews(v))
  const statements: { kind: string; statement: string }[] = []
  const unwatch = watchEmbeddedStatements(t.s.ch, (s) => void statements.push({ kind: s.kind, statement: s.statement }))
  const result = await reconcileLiveViews(t.s, { shareVideos: 2, batch: 1 })
  unwatch!()
  // 'lost' and 'over' (above) and these three: in three shares of at most two, a statement a video for its total
  expect(result).toEqual({ videos: 5, corrected: 3 })
  expect(await t.s.redis.mget(keys.liveViews('a'), keys.liveViews('b'), keys.liveViews('c'))).toEqual(['1', '2', '13'])
  expect(statements.filter((s) => s.statement.includes('SELECT DISTINCT creator_id, video_id')).length).toBe(3)
  expect(statements.filter((s) => s.statement.includes('FROM video_stats_per_month')).length).toBe(5)
  expect(statements.length).toBe(1 + 3 + 5)
  expect(statements.every((s) => s.kind === 'load')).toBe(true)
})

it('lowers a counter, settleMs later, by what it was over when first read and still is, keeping what was counted since', async () => {
  // Over their totals of 2: 'busy-*' and 'idle-*' by views never stored; 'landing-*' by views still on their way to ClickHouse.
  const over = { 'busy-1': 4, 'busy-2': 6, 'landing-1': 3, 'landing-2': 5, 'idle-1': 4, 'idle-2': 7 }
  for (const [v, n] of Object.entries(over)) {
    await views(v, 2)
    await t.s.redis.incrby(keys.liveViews(v), n)
  }
  const from = Date.now()
  const result = await reconcileLiveViews(t.s, {
    settleMs: 300,
    beforeRecheck: async () => {
      // Between the two reads: a view counted on each 'busy-*' (not loaded yet), and the views of each 'landing-*' loaded.
      for (const v of ['busy-1', 'busy-2']) await t.s.redis.incr(keys.liveViews(v))
      for (const v of ['landing-1', 'landing-2'])
        await t.s.ch.command({
          query: `INSERT INTO video_stats_per_month (month, creator_id, video_id, views)
                  SELECT month, creator_id, video_id, {n:UInt64} FROM video_stats_per_month WHERE video_id = {v:String} LIMIT 1`,
          query_params: { v, n: over[v as keyof typeof over] },
        })
    },
  })
  expect(Date.now() - from).toBeGreaterThanOrEqual(300)
  expect(result.corrected).toBe(4)
  // Each lowered by its own excess: the busy ones keep the view counted between the reads.
  expect(await t.s.redis.mget(...Object.keys(over).map((v) => keys.liveViews(v)))).toEqual(['3', '3', '5', '7', '2', '2'])
})

it('reads each counter over its total again no sooner than settleMs after it was read, the last of a long pass as well', async () => {
  for (let i = 0; i < 8; i++) await views(`late-${i}`, 1)
  await reconcileLiveViews(t.s, { settleMs: 0 })
  // Every counter one over its total (a view never stored), so that each first read has a second.
  const all = (await rows<{ video_id: string }>(t.s.ch, 'SELECT DISTINCT video_id FROM video_stats_per_day')).map((r) => r.video_id)
  for (const v of all) await t.s.redis.incr(keys.liveViews(v))
  // When each lifetime-totals statement started: the pass's first reads, then the second reads.
  const starts: number[] = []
  const unwatch = watchEmbeddedStatements(t.s.ch, (s) => void (s.statement.includes('FROM video_stats_per_month') && starts.push(Date.now() - s.ms)))
  // A batch a video and a share a video: the pass's first reads take a while.
  const result = await reconcileLiveViews(t.s, { settleMs: 300, batch: 1, shareVideos: 1 })
  unwatch!()
  expect(result).toEqual({ videos: all.length, corrected: all.length })
  expect(starts).toHaveLength(2 * all.length)
  const [first, second] = [starts.slice(0, all.length), starts.slice(all.length)]
  expect(Math.max(...first) - Math.min(...first)).toBeGreaterThan(20)
  // The last counter read is read again settleMs after it too (less the read of its counter before its total).
  expect(Math.min(...second) - Math.max(...first)).toBeGreaterThanOrEqual(300 - 20)
})
