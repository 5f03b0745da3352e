import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ev, startTestEdge, type TestEdge } from '../test/harness/edge.ts'
import { videoSnapshot } from '../test/harness/snapshot.ts'

// One batch taken in at a time, each waiting a second for its flush; a second batch may wait 100 ms.
let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge({ INGEST_MAX_IN_PROGRESS: '1', BUFFER_WAIT_MS: '100', FLUSH_INTERVAL_MS: '1000' })
})
afterAll(() => t.stop())

const refused = async () => (await t.s.metrics.batchesRefused.get()).values[0]?.value ?? 0
const inProgress = async () => (await t.s.metrics.batchesInProgress.get()).values[0]?.value ?? 0
/** The waits for a place observed so far (cs_ingest_stage_duration_seconds{stage="place"}): count and sum (s). */
const placeWaits = async () => {
  const values = (await t.s.metrics.ingestStage.get()).values.filter((v) => v.labels.stage === 'place')
  const of = (suffix: string) => values.find((v) => v.metricName?.endsWith(suffix))?.value ?? 0
  return { count: of('_count'), sum: of('_sum') }
}

describe('the edge takes in at most INGEST_MAX_IN_PROGRESS batches at once', () => {
  it('answers 503 with Retry-After to a batch that found no room within BUFFER_WAIT_MS, stores nothing of it, and takes it again once there is room', async () => {
    const video = `v-${crypto.randomUUID().slice(0, 8)}`
    const token = await t.token({ videoId: video })
    const before = await refused()
    const waitsBefore = await placeWaits()
    const first = t.post(token, [ev('play', { ts: Date.now() - 5_000 })])
    // The first batch is inside, waiting for its flush.
    await vi.waitFor(async () => expect(await inProgress()).toBe(1))
    const second = [ev('pause', { ts: Date.now() - 4_000 })]
    const over = await t.post(token, second, { load: false })
    expect(over.status).toBe(503)
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    const problem = await over.json()
    expect(problem.code).toBe('OVERLOADED')
    expect(problem.detail).toMatch(/as many batches as it can at once/)
    expect(await refused()).toBe(before + 1)
    // Its wait in vain is observed as a wait for a place; the first batch, let in at once, waited for none.
    const waits = await placeWaits()
    expect(waits.count - waitsBefore.count).toBe(1)
    expect(waits.sum - waitsBefore.sum).toBeGreaterThanOrEqual(0.09)
    expect(await (await first).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] })
    expect(await inProgress()).toBe(0)
    // The refused batch was never read: sent again, it is new.
    expect(await (await t.post(token, second)).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] })
    expect((await videoSnapshot(t.s.ch, video)).rawIds).toEqual([{ n: 2, ids: 2 }])
  })
})
