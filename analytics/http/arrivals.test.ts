import { expect, it } from 'vitest'
import { arrivals } from './arrivals.ts'

const state = (p: Promise<void>) => Promise.race([p.then(() => 'settled'), new Promise((r) => setTimeout(() => r('waiting'), 5))])

it('settles once every ticket taken before the call is back, whatever the order', async () => {
  const onTheWay = arrivals()
  const a = onTheWay.take()
  const b = onTheWay.take()
  const settled = onTheWay.settled()
  b()
  expect(await state(settled)).toBe('waiting')
  a()
  expect(await state(settled)).toBe('settled')
  expect(onTheWay.out).toBe(0)
})

it('does not wait for tickets taken after the call, and settles at once with none out', async () => {
  const onTheWay = arrivals()
  expect(await state(onTheWay.settled())).toBe('settled')
  const early = onTheWay.take()
  const settled = onTheWay.settled()
  const late = onTheWay.take()
  early()
  expect(await state(settled)).toBe('settled')
  expect(onTheWay.out).toBe(1)
  late()
})

it('hands a ticket back once: a second call does not hand back another', async () => {
  const onTheWay = arrivals()
  const a = onTheWay.take()
  const b = onTheWay.take()
  a()
  a()
  expect(onTheWay.out).toBe(1)
  expect(await state(onTheWay.settled())).toBe('waiting')
  b()
  expect(onTheWay.out).toBe(0)
})
