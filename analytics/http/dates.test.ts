import { describe, expect, it } from 'vitest'
import { addDays, nextPeriod, periodEnd, periodsBetween, periodStart, rangeQuery } from './dates.ts'

describe('periods', () => {
  it('lists every period overlapping a range, each whole, weeks from Monday', () => {
    expect(periodsBetween('day', '2024-02-27', '2024-03-01')).toEqual(['2024-02-27', '2024-02-28', '2024-02-29', '2024-03-01'])
    // 2026-11-04 is a Wednesday: its week starts on Monday the 2nd.
    expect(periodsBetween('week', '2026-11-04', '2026-11-16')).toEqual(['2026-11-02', '2026-11-09', '2026-11-16'])
    expect(periodsBetween('month', '2025-12-31', '2026-02-01')).toEqual(['2025-12-01', '2026-01-01', '2026-02-01'])
    expect(periodsBetween('year', '2024-06-01', '2026-01-01')).toEqual(['2024-01-01', '2025-01-01', '2026-01-01'])
    expect(periodsBetween('day', '2026-03-02', '2026-03-01')).toEqual([])
  })

  it('stops one past `max`, so a caller can tell a range that is too long', () => {
    expect(periodsBetween('day', '2026-01-01', '2026-12-31', 3)).toEqual(['2026-01-01', '2026-01-02', '2026-01-03', '2026-01-04'])
    expect(periodsBetween('day', '2026-01-01', '2026-01-02', 3)).toEqual(['2026-01-01', '2026-01-02'])
  })

  it('hands out the same list for a repeated range, frozen so no caller can change it for the next', () => {
    const first = periodsBetween('day', '2026-11-03', '2026-12-02')
    const again = periodsBetween('day', '2026-11-03', '2026-12-02')
    expect(again).toBe(first)
    expect(first).toHaveLength(30)
    expect(Object.isFrozen(first)).toBe(true)
    expect(() => (first as string[]).push('2026-12-03')).toThrow(TypeError)
    expect(periodsBetween('day', '2026-11-03', '2026-12-02')).toHaveLength(30)
    // The same dates with another bound are another list.
    expect(periodsBetween('day', '2026-11-03', '2026-12-02', 5)).toHaveLength(6)
  })

  it('keeps a bounded number of recent lists and still answers right once one was dropped', () => {
    const first = periodsBetween('day', '2020-01-01', '2020-01-10')
    for (let i = 0; i < 600; i++) periodsBetween('day', addDays('2021-01-01', i), addDays('2021-01-01', i + 2))
    const later = periodsBetween('day', '2020-01-01', '2020-01-10')
    expect(later).not.toBe(first)
    expect(later).toEqual(first)
  })

  it('knows where periods start and end', () => {
    expect(periodStart('week', '2026-11-08')).toBe('2026-11-02') // a Sunday belongs to the week of the Monday before
    expect(periodEnd('month', '2024-02-01')).toBe('2024-02-29')
    expect(nextPeriod('year', '2026-01-01')).toBe('2027-01-01')
    expect(addDays('0099-12-31', 1)).toBe('0100-01-01')
  })
})

describe('rangeQuery', () => {
  it('takes a valid range and refuses one out of order, too long, or with a date that does not exist', () => {
    expect(rangeQuery.safeParse({ grain: 'day', from: '2026-01-01', to: '2027-02-04' }).success).toBe(true) // 400 days
    const long = rangeQuery.safeParse({ grain: 'day', from: '2026-01-01', to: '2027-02-05' })
    expect(long.success).toBe(false)
    expect(long.error?.issues.map((i) => i.message)).toEqual([expect.stringContaining('range too long')])
    const backwards = rangeQuery.safeParse({ grain: 'week', from: '2026-02-01', to: '2026-01-01' })
    expect(backwards.error?.issues.map((i) => i.message)).toEqual(['from must not be after to'])
    expect(rangeQuery.safeParse({ grain: 'day', from: '2026-02-30', to: '2026-03-01' }).success).toBe(false)
  })
})
