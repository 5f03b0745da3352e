import { afterAll, beforeAll, expect, it } from 'vitest'
import { keys } from '../../ingest/state/keys.ts'
import { ev, startTestEdge, type TestEdge } from '../../test/harness/edge.ts'
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
  const result = await reconcileLiveViews(t.s)
  expect(result).toEqual({ videos: 2, corrected: 2 })
  expect(await t.s.redis.get(keys.liveViews('lost'))).toBe('3')
  expect(await t.s.redis.get(keys.liveViews('over'))).toBe('2')
  expect(await reconcileLiveViews(t.s)).toEqual({ videos: 2, corrected: 0 })
})
