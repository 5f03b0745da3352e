import v8 from 'node:v8'
import { describe, expect, it, vi } from 'vitest'
import { createMetrics, watchEventLoop } from './metrics.ts'

/** The histogram's sum, count and count in the bucket `le`, from the registry's text. */
async function delays(metrics: ReturnType<typeof createMetrics>, le: string) {
  const text = await metrics.registry.metrics()
  const v = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN)
  return {
    sum: v(/^cs_event_loop_delay_seconds_sum ([0-9.e+-]+)$/m),
    count: v(/^cs_event_loop_delay_seconds_count ([0-9.e+-]+)$/m),
    within: v(new RegExp(`^cs_event_loop_delay_seconds_bucket\\{le="${le}"\\} ([0-9.e+-]+)$`, 'm')),
  }
}

describe('createMetrics', () => {
  it('scrapes without walking the JavaScript heap', async () => {
    const metrics = createMetrics()
    const spaces = vi.spyOn(v8, 'getHeapSpaceStatistics')
    try {
      const text = await metrics.registry.metrics()
      expect(spaces).not.toHaveBeenCalled()
      expect(text).not.toContain('cs_nodejs_heap_space_size')
      // the heap's size is still there, read the cheap way (process.memoryUsage)
      expect(Number(/^cs_nodejs_heap_size_total_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0)
    } finally {
      spaces.mockRestore()
    }
  })
})

describe('watchEventLoop', () => {
  it('records how long the JavaScript thread was held past the timer', async () => {
    const metrics = createMetrics()
    const stop = watchEventLoop(metrics, 10)
    try {
      const calm = await vi.waitFor(async () => {
        const d = await delays(metrics, '0.1')
        expect(d.count).toBeGreaterThan(0)
        return d
      })
      const until = performance.now() + 150
      while (performance.now() < until) {
        // the thread held for 150 ms
      }
      // One tick more than 100 ms late (a busy machine may have made others late too: counted from before).
      const held = await vi.waitFor(async () => {
        const d = await delays(metrics, '0.1')
        expect(d.count - d.within - (calm.count - calm.within)).toBeGreaterThanOrEqual(1)
        return d
      })
      expect(held.sum - calm.sum).toBeGreaterThanOrEqual(0.13)
    } finally {
      stop()
    }
  })
})
