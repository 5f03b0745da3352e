import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { arrivals } from './arrivals.ts'
import { batcher } from './batch.ts'

it('runs calls made while a batch runs together in the next batch, in order', async () => {
  const batches: number[][] = []
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const square = batcher(async (xs: number[]) => {
    batches.push(xs)
    await gate
    return xs.map((x) => x * x)
  })
  const first = square(1)
  const later = Promise.all([square(2), square(3), square(4)])
  release()
  expect(await first).toBe(1)
  expect(await later).toEqual([4, 9, 16])
  expect(batches).toEqual([[1], [2, 3, 4]])
})

it('splits a long queue into batches of at most maxItems', async () => {
  const sizes: number[] = []
  const echo = batcher(async (xs: number[]) => (sizes.push(xs.length), xs), { maxItems: 2 })
  expect(await Promise.all([1, 2, 3, 4, 5].map(echo))).toEqual([1, 2, 3, 4, 5])
  expect(sizes).toEqual([1, 2, 2])
})

it('fails every call of a failed batch and keeps serving the next ones', async () => {
  let failures = 1
  const upper = batcher(async (xs: string[]) => {
    if (failures-- > 0) throw new Error('engine down')
    return xs.map((x) => x.toUpperCase())
  })
  const [a, b] = [upper('a'), upper('b')]
  await expect(a).rejects.toThrow('engine down')
  await expect(b).resolves.toBe('B')
  expect(await upper('c')).toBe('C')
})

it('runs up to `concurrency` batches at once (a ClickHouse server runs queries side by side)', async () => {
  const releases: (() => void)[] = []
  const batches: number[][] = []
  /** Resolves when the next batch starts. */
  let started: () => void = () => {}
  const f = batcher(
    async (xs: number[]) => {
      batches.push(xs)
      started()
      await new Promise<void>((r) => releases.push(r))
      return xs
    },
    { concurrency: 2 },
  )
  const all = Promise.all([1, 2, 3, 4].map(f))
  // 1 and 2 start at once, each alone; 3 and 4 wait for the next free slot, together.
  expect(batches).toEqual([[1], [2]])
  const third = new Promise<void>((r) => (started = r))
  releases[0]!()
  await third
  expect(batches).toEqual([[1], [2], [3, 4]])
  releases[1]!()
  releases[2]!()
  expect(await all).toEqual([1, 2, 3, 4])
})

it('without gatherMs, a call that finds no batch running goes at once', () => {
  const batches: number[][] = []
  const echo = batcher(async (xs: number[]) => (batches.push(xs), xs))
  void echo(1)
  expect(batches).toEqual([[1]])
})

describe('gathering (on fake timers)', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('with gatherMs, a call that finds no batch running waits that long for others to join it', async () => {
    const batches: number[][] = []
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const echo = batcher(
      async (xs: number[]) => {
        batches.push(xs)
        if (batches.length === 1) await gate
        return xs
      },
      { gatherMs: 5 },
    )
    const first = echo(1)
    await vi.advanceTimersByTimeAsync(3)
    const second = echo(2)
    expect(batches).toEqual([]) // still gathering
    await vi.advanceTimersByTimeAsync(2)
    expect(batches).toEqual([[1, 2]])
    // Calls made while that batch runs go as soon as it ends, without another wait.
    const third = echo(3)
    release()
    await vi.advanceTimersByTimeAsync(0)
    expect(batches).toEqual([[1, 2], [3]])
    expect(await Promise.all([first, second, third])).toEqual([1, 2, 3])
  })

  it('with onTheWay, a gathering batch also waits for the calls under way, up to gatherMaxMs', async () => {
    const onTheWay = arrivals()
    const batches: number[][] = []
    const echo = batcher(async (xs: number[]) => (batches.push(xs), xs), { gatherMs: 3, onTheWay, gatherMaxMs: 20 })
    const tickets = [1, 2, 3].map(() => onTheWay.take())
    // The first request joins at once; the others are still on their way when 3 ms have passed.
    tickets[0]!()
    const first = echo(1)
    await vi.advanceTimersByTimeAsync(3)
    expect(batches).toEqual([])
    await vi.advanceTimersByTimeAsync(5)
    tickets[1]!()
    const second = echo(2)
    expect(batches).toEqual([])
    // The third needs no batch (say, its answer was kept): handing its ticket back lets the batch go.
    tickets[2]!()
    await vi.advanceTimersByTimeAsync(0)
    expect(batches).toEqual([[1, 2]])
    expect(await Promise.all([first, second])).toEqual([1, 2])

    // A call still under way at gatherMaxMs is not waited for longer.
    const stuck = onTheWay.take()
    const third = echo(3)
    await vi.advanceTimersByTimeAsync(19)
    expect(batches).toEqual([[1, 2]])
    await vi.advanceTimersByTimeAsync(1)
    expect(batches).toEqual([[1, 2], [3]])
    expect(await third).toBe(3)
    stuck()
  })

  it('with onTheWay, a batch whose calls were all under way goes once they have joined, without waiting gatherMs', async () => {
    const onTheWay = arrivals()
    const batches: number[][] = []
    const echo = batcher(async (xs: number[]) => (batches.push(xs), xs), { gatherMs: 3, onTheWay, gatherMaxMs: 20 })
    // A burst: every request took its ticket on arrival, then each reaches the batcher in turn.
    const tickets = [1, 2, 3].map(() => onTheWay.take())
    const calls = [1, 2, 3].map((x, i) => {
      tickets[i]!()
      return echo(x)
    })
    await vi.advanceTimersByTimeAsync(0)
    expect(batches).toEqual([[1, 2, 3]])
    expect(await Promise.all(calls)).toEqual([1, 2, 3])
  })

  it('with onTheWay but nothing under way, a lone call waits gatherMs only', async () => {
    const onTheWay = arrivals()
    const batches: number[][] = []
    const echo = batcher(async (xs: number[]) => (batches.push(xs), xs), { gatherMs: 3, onTheWay, gatherMaxMs: 20 })
    const back = onTheWay.take()
    back()
    const one = echo(1)
    await vi.advanceTimersByTimeAsync(3)
    expect(batches).toEqual([[1]])
    expect(await one).toBe(1)
  })
})
