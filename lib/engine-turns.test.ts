import { describe, expect, it, vi } from 'vitest'
import { engineTurns } from './engine-turns.ts'

/** A read whose answer the test gives when it wants. */
function pendingRead() {
  let answer!: () => void
  const done = new Promise<void>((r) => (answer = r))
  return { run: () => done, answer }
}

describe('engineTurns', () => {
  it('lets a load go at once when no read is under way', async () => {
    const turns = engineTurns({ quietMs: 5, maxWaitMs: 1_000 })
    const run = vi.fn(async () => 'loaded')
    const load = turns.background(run)
    // Called before the first await: no wait at all.
    expect(run).toHaveBeenCalledTimes(1)
    expect(await load).toBe('loaded')
    expect(turns.held).toEqual({ loads: 0, ms: 0 })
  })

  it('holds a load while a read is under way, and lets it go once the reads have been quiet', async () => {
    const turns = engineTurns({ quietMs: 20, maxWaitMs: 5_000 })
    const order: string[] = []
    const read = pendingRead()
    const reading = turns.read(read.run).then(() => order.push('read answered'))
    const load = turns.background(async () => {
      order.push('load ran')
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(order).toEqual([])
    expect(turns.state).toEqual({ reads: 1, waiting: 1 })
    const answeredAt = performance.now()
    read.answer()
    await reading
    await load
    expect(order).toEqual(['read answered', 'load ran'])
    // Not before quietMs without a read (timers may fire a millisecond early).
    expect(performance.now() - answeredAt).toBeGreaterThanOrEqual(19)
    // Counted: one load held, at least the 50 ms the read went on plus the quiet time.
    expect(turns.held.loads).toBe(1)
    expect(turns.held.ms).toBeGreaterThanOrEqual(68)
    expect(turns.state).toEqual({ reads: 0, waiting: 0 })
  })

  it('holds a load until the batch that follows a read has also been answered', async () => {
    const turns = engineTurns({ quietMs: 30, maxWaitMs: 5_000 })
    const order: string[] = []
    const first = pendingRead()
    const second = pendingRead()
    const reads = turns.read(first.run).then(async () => {
      order.push('first answered')
      // The batch's next statement, sent right after the first's answer.
      await turns.read(second.run)
      order.push('second answered')
    })
    const load = turns.background(async () => {
      order.push('load ran')
    })
    first.answer()
    await vi.waitFor(() => expect(order).toEqual(['first answered']))
    await new Promise((r) => setTimeout(r, 60))
    expect(order).toEqual(['first answered'])
    second.answer()
    await Promise.all([reads, load])
    expect(order).toEqual(['first answered', 'second answered', 'load ran'])
  })

  it('lets a load go after maxWaitMs however long the reads go on', async () => {
    const turns = engineTurns({ quietMs: 5, maxWaitMs: 40 })
    const read = pendingRead()
    void turns.read(read.run)
    const run = vi.fn(async () => {})
    const load = turns.background(run)
    await vi.waitFor(() => expect(run).toHaveBeenCalledTimes(1))
    expect(turns.state).toEqual({ reads: 1, waiting: 0 })
    read.answer()
    await load
  })

  it('never holds a read for a waiting load', async () => {
    const turns = engineTurns({ quietMs: 5, maxWaitMs: 5_000 })
    const read = pendingRead()
    void turns.read(read.run)
    const load = turns.background(async () => {})
    const run = vi.fn(async () => 'rows')
    const second = turns.read(run)
    expect(run).toHaveBeenCalledTimes(1)
    expect(await second).toBe('rows')
    read.answer()
    await load
  })
})
