import { expect, it } from 'vitest'
import { arrivals } from './arrivals.ts'

/** Whether `p` has settled, once every reaction already queued has run (setImmediate comes after all microtasks). */
const state = async (p: Promise<void>) => {
  let settled = false
  void p.then(() => (settled = true))
  await new Promise((r) => setImmediate(r))
  return settled ? 'settled' : 'waiting'
}

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

it('settles each wait exactly when the last of its tickets comes back, over many tickets handed back in random order', async () => {
  const onTheWay = arrivals()
  const backs: (() => void)[] = []
  const waits: { upTo: number; done: boolean }[] = []
  let seed = 7
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  for (let i = 1; i <= 200; i++) {
    backs.push(onTheWay.take())
    if (i % 20 === 0) {
      const w = { upTo: i, done: false }
      waits.push(w)
      void onTheWay.settled().then(() => (w.done = true))
    }
  }
  const order = backs.map((_, i) => i).sort(() => random() - 0.5)
  const returned = new Set<number>()
  for (const i of order) {
    backs[i]!()
    returned.add(i + 1)
    await Promise.resolve()
    for (const w of waits) expect(w.done).toBe(Array.from({ length: w.upTo }, (_, k) => k + 1).every((t) => returned.has(t)))
  }
  expect(onTheWay.out).toBe(0)
})
