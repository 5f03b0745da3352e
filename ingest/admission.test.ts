import { describe, expect, it } from 'vitest'
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
    const a = createAdmission({ max: 1, waitMs: 20, maxWaiting: 1 })
    const first = (await a.enter())!
    const late = a.enter()
    expect(a.full).toBe(true)
    expect(await late).toBeUndefined()
    expect(a.waiting).toBe(0)
    expect(a.full).toBe(false)
    first()
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

  it('refuses at once while the queue stands: every wait that ended for intervalMs was targetMs or longer; a crowd arriving at once still waits', async () => {
    let clock = 0
    const waits: number[] = []
    const a = createAdmission({ max: 1, waitMs: 5_000, maxWaiting: 10, targetMs: 100, intervalMs: 1_000, now: () => clock, onWait: (ms) => waits.push(ms) })
    let leave = (await a.enter())!
    // A crowd at once: all wait, the queue far from its bound.
    const crowd = [a.enter(), a.enter(), a.enter(), a.enter()]
    expect(a.waiting).toBe(4)
    expect(a.full).toBe(false)
    // The first waits 150 ms: too long, but for less than an interval.
    clock = 150
    leave()
    leave = (await crowd[0]!)!
    expect(a.standing).toBe(false)
    expect(a.full).toBe(false)
    // Every wait too long for a whole interval: the queue stands, and one more is refused at once, with 3 of 10 waiting.
    clock = 1_150
    leave()
    leave = (await crowd[1]!)!
    expect(a.standing).toBe(true)
    expect(a.waiting).toBe(2)
    expect(a.full).toBe(true)
    expect(await a.enter()).toBeUndefined()
    expect(a.waiting).toBe(2)
    // The queue empties: it stands no more, and a newcomer may wait again.
    clock = 1_200
    leave()
    leave = (await crowd[2]!)!
    expect(a.standing).toBe(true)
    clock = 1_250
    leave()
    leave = (await crowd[3]!)!
    expect(a.waiting).toBe(0)
    expect(a.standing).toBe(false)
    expect(a.full).toBe(false)
    expect(waits).toEqual([150, 1_150, 1_200, 1_250])
    const later = a.enter()
    expect(a.waiting).toBe(1)
    leave()
    ;(await later)!()
    expect(a.inside).toBe(0)
  })

  it('stands no more once a wait is short, the queue not yet empty; never stands while waits are short, however long the queue', async () => {
    let clock = 0
    const a = createAdmission({ max: 1, waitMs: 5_000, maxWaiting: 10, targetMs: 100, intervalMs: 0, now: () => clock })
    let leave = (await a.enter())!
    const early = [a.enter(), a.enter()]
    clock = 500
    leave()
    leave = (await early[0]!)!
    // Two newcomers while the second still waits: their waits will be short.
    const late = [a.enter(), a.enter()]
    clock = 550
    leave()
    leave = (await early[1]!)!
    // Two waits too long, the second an interval (0) after the first: the queue stands.
    expect(a.standing).toBe(true)
    expect(a.full).toBe(true)
    clock = 560
    leave()
    leave = (await late[0]!)!
    // 60 ms: short. One still waits, and the queue stands no more.
    expect(a.waiting).toBe(1)
    expect(a.standing).toBe(false)
    expect(a.full).toBe(false)
    clock = 570
    leave()
    leave = (await late[1]!)!
    // One let in every 40 ms, each having waited two turns (80 ms), one more always waiting: never standing.
    let queued = a.enter()
    for (let i = 0; i < 3; i++) {
      const following = a.enter()
      clock += 40
      leave()
      leave = (await queued)!
      expect(a.waiting).toBe(1)
      expect(a.standing).toBe(false)
      queued = following
    }
    leave()
    ;(await queued)!()
    expect(a.inside).toBe(0)
  })
})
