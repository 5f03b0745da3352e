import { describe, expect, it, vi } from 'vitest'
import { createAdmission } from './admission.ts'

const settled = async <T>(p: Promise<T>) => {
  let done = false
  void p.then(() => (done = true))
  await new Promise((r) => setImmediate(r))
  return done
}

describe('admission', () => {
  it('lets in up to max at once, and the next in order of arrival as each leaves', async () => {
    const a = createAdmission({ max: 2, waitMs: 5_000 })
    const one = (await a.enter())!
    const two = (await a.enter())!
    expect(a.inside).toBe(2)
    const third = a.enter()
    const fourth = a.enter()
    expect(await settled(third)).toBe(false)
    one()
    const leaveThird = await third
    expect(leaveThird).toBeTypeOf('function')
    expect(await settled(fourth)).toBe(false)
    // Leaving twice frees one place only.
    one()
    expect(await settled(fourth)).toBe(false)
    two()
    expect(await fourth).toBeTypeOf('function')
    expect(a.inside).toBe(2)
  })

  it('refuses a request that waited waitMs in vain, and its place in the queue costs nobody a slot', async () => {
    const a = createAdmission({ max: 1, waitMs: 30 })
    const first = (await a.enter())!
    const started = performance.now()
    expect(await a.enter()).toBeUndefined()
    expect(performance.now() - started).toBeGreaterThanOrEqual(25)
    first()
    const next = await a.enter()
    expect(next).toBeTypeOf('function')
    expect(a.inside).toBe(1)
    next!()
    expect(a.inside).toBe(0)
  })

  it('lets at most maxWaiting wait; one more is refused at once, and full says so beforehand', async () => {
    const a = createAdmission({ max: 1, waitMs: 5_000, maxWaiting: 2 })
    expect(a.full).toBe(false)
    const first = (await a.enter())!
    // One inside, nobody waiting: a newcomer may still wait.
    expect(a.full).toBe(false)
    const second = a.enter()
    const third = a.enter()
    expect(a.waiting).toBe(2)
    expect(a.full).toBe(true)
    const started = performance.now()
    expect(await a.enter()).toBeUndefined()
    expect(performance.now() - started).toBeLessThan(1_000)
    expect(a.waiting).toBe(2)
    // A place frees: the first waiter goes in, and there is room in the queue again.
    first()
    const leaveSecond = (await second)!
    expect(a.waiting).toBe(1)
    expect(a.full).toBe(false)
    leaveSecond()
    ;(await third)!()
    expect(a.inside).toBe(0)
    expect(a.waiting).toBe(0)
  })

  it('counts a waiter that timed out out of the queue', async () => {
    const waits: number[] = []
    const a = createAdmission({ max: 1, waitMs: 20, maxWaiting: 1, onWait: (ms) => waits.push(ms) })
    const first = (await a.enter())!
    const late = a.enter()
    expect(a.full).toBe(true)
    expect(await late).toBeUndefined()
    expect(a.waiting).toBe(0)
    expect(a.full).toBe(false)
    // Its wait is reported, as a waiter's let in is.
    expect(waits).toHaveLength(1)
    expect(waits[0]).toBeGreaterThanOrEqual(15)
    first()
  })

  it('reports the wait of a waiter let in', async () => {
    // The clock alone is faked: the waiter's 30 ms pass at once, and nothing waits on a timer.
    vi.useFakeTimers({ toFake: ['performance'] })
    try {
      const waits: number[] = []
      const a = createAdmission({ max: 1, waitMs: 5_000, onWait: (ms) => waits.push(ms) })
      const first = (await a.enter())!
      const second = a.enter()
      vi.advanceTimersByTime(30)
      expect(waits).toEqual([])
      first()
      ;(await second)!()
      expect(waits).toHaveLength(1)
      expect(waits[0]).toBeGreaterThanOrEqual(25)
    } finally {
      vi.useRealTimers()
    }
  })

  it('refuses at once when full and waitMs is 0', async () => {
    const a = createAdmission({ max: 1, waitMs: 0 })
    const first = (await a.enter())!
    expect(a.full).toBe(true)
    expect(await a.enter()).toBeUndefined()
    first()
    expect(a.full).toBe(false)
    expect(await a.enter()).toBeTypeOf('function')
  })
})
