import { expect, it } from 'vitest'
import { singleFlight } from './single-flight.ts'

it('shares one running computation per key and starts a new one once it settled', async () => {
  const flight = singleFlight<number>()
  let runs = 0
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const compute = async () => {
    runs++
    await gate
    return runs
  }
  const shared = Promise.all([flight('a', compute), flight('a', compute), flight('a', compute)])
  const other = flight('b', async () => 42)
  release()
  expect(await shared).toEqual([1, 1, 1])
  expect(await other).toBe(42)
  expect(await flight('a', compute)).toBe(2)
  await expect(flight('c', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
  expect(await flight('c', async () => 7)).toBe(7) // a failure is not kept either
})
