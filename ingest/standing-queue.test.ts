import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ev, startTestEdge, type TestEdge } from '../test/harness/edge.ts'

// One batch taken in at a time, each waiting 300 ms for its flush; up to 10 may wait for a place (up
// to 5 s). A wait of 50 ms or more is too long, and two too long in a row make a standing queue.
let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge({
    INGEST_MAX_IN_PROGRESS: '1',
    INGEST_MAX_WAITING: '10',
    BUFFER_WAIT_MS: '5000',
    FLUSH_INTERVAL_MS: '300',
    INGEST_QUEUE_TARGET_MS: '50',
    INGEST_QUEUE_INTERVAL_MS: '0',
  })
})
afterAll(() => t.stop())

const batch = () => new Request('http://edge.test/v1/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
const inProgress = async () => (await t.s.metrics.batchesInProgress.get()).values[0]?.value ?? 0
/** The waits for a place observed so far: count and sum (s). */
const placeWaits = async () => {
  const values = (await t.s.metrics.ingestStage.get()).values.filter((v) => v.labels.stage === 'place')
  const of = (suffix: string) => values.find((v) => v.metricName?.endsWith(suffix))?.value ?? 0
  return { count: of('_count'), sum: of('_sum') }
}

describe('a queue for a place among INGEST_MAX_IN_PROGRESS takes bursts, not a standing overload', () => {
  it('lets a crowd arriving at once wait; sheds newcomers at the front once the waits stood too long; lets them wait again once the queue has emptied', async () => {
    const token = await t.token({ videoId: `v-${crypto.randomUUID().slice(0, 8)}` })
    const before = await placeWaits()
    const posts = ['play', 'pause', 'seek', 'progress'].map((type, i) => t.post(token, [ev(type, { ts: Date.now() - 5_000 + i, ...(type === 'progress' ? { watched_ms: 1_000 } : {}) })], { load: false }))
    await vi.waitFor(async () => expect(await inProgress()).toBe(1))
    // One inside and three waiting, far below INGEST_MAX_WAITING: a newcomer may still wait.
    expect(t.edge.shed(batch())).toBeUndefined()
    // The second waits about a flush (too long), the third about two: the queue stands while the fourth waits.
    await vi.waitFor(() => expect(t.edge.shed(batch())).toBeDefined(), { timeout: 3_000, interval: 10 })
    const shed = t.edge.shed(batch())!
    expect(shed.status).toBe(503)
    expect(shed.headers.get('retry-after')).toBe('2')
    expect((await shed.json()).code).toBe('OVERLOADED')
    // Every batch of the crowd was let in and taken.
    for (const res of await Promise.all(posts)) expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] })
    // The queue emptied: it stands no more.
    expect(t.edge.shed(batch())).toBeUndefined()
    const after = await placeWaits()
    expect(after.count - before.count).toBe(3)
    // The three waited about one, two and three flushes.
    expect(after.sum - before.sum).toBeGreaterThan(0.5)
  })
})
