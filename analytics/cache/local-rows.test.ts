import { expect, it } from 'vitest'
import { localRows } from './local-rows.ts'

it('keeps rows per key, the first row of a period winning, for at most ttlMs from when the key was first kept', () => {
  let now = 1_000
  const local = localRows<string>({ maxRows: 100, ttlMs: 500, now: () => now })
  expect(local.get('k')).toBeUndefined()
  local.add('k', [['2026-03-01', 'a']])
  now += 400
  local.add('k', [['2026-03-01', 'other'], ['2026-03-02', 'b']])
  expect([...local.get('k')!]).toEqual([['2026-03-01', 'a'], ['2026-03-02', 'b']])
  expect(local.size).toBe(2)
  // The key's age counts from its first row: at 500 ms all of it goes, rows added later too.
  now += 100
  expect(local.get('k')).toBeUndefined()
  expect(local.size).toBe(0)
  local.add('k', [['2026-03-02', 'c']])
  expect([...local.get('k')!]).toEqual([['2026-03-02', 'c']])
})

it('holds at most maxRows, dropping the least recently used keys first', () => {
  const local = localRows<number>({ maxRows: 4, ttlMs: 60_000, now: () => 0 })
  local.add('a', [['1', 1], ['2', 2]])
  local.add('b', [['1', 1]])
  local.add('c', [['1', 1]])
  expect(local.get('a')).toBeDefined() // now the most recently used
  local.add('d', [['1', 1]]) // 5 rows: b, the least recently used, goes
  expect(local.get('b')).toBeUndefined()
  expect(['a', 'c', 'd'].map((k) => local.get(k)?.size)).toEqual([2, 1, 1])
  expect(local.size).toBe(4)
  // One key larger than the bound is not kept at all rather than kept whole.
  local.add('big', Array.from({ length: 5 }, (_, i) => [String(i), i] as const))
  expect(local.get('big')).toBeUndefined()
  expect(local.size).toBeLessThanOrEqual(4)
})
