import { describe, expect, it } from 'vitest'
import { addDays, dayIn, daysBetween, lastDayPastWindow, parseDay, startOfDay, windowClosesAt } from './calendar.ts'

describe('settlement calendar', () => {
  it('accepts only real calendar dates', () => {
    expect(parseDay('2024-02-29')).toBe('2024-02-29')
    for (const bad of ['2023-02-29', '2024-13-01', '2024-1-1', '20240101', 'yesterday', '2024-01-01T00:00:00Z', '1969-12-31'])
      expect(() => parseDay(bad), bad).toThrow(/calendar date/)
  })

  it('walks days across months and years', () => {
    expect(addDays('2024-02-28', 1)).toBe('2024-02-29')
    expect(addDays('2024-12-31', 1)).toBe('2025-01-01')
    expect(addDays('2024-03-01', -1)).toBe('2024-02-29')
    expect(daysBetween('2024-01-30', '2024-02-02')).toEqual(['2024-01-30', '2024-01-31', '2024-02-01', '2024-02-02'])
  })

  it('starts a Seoul day at 15:00 UTC the day before', () => {
    expect(startOfDay('2024-03-02', 'Asia/Seoul').toISOString()).toBe('2024-03-01T15:00:00.000Z')
    expect(dayIn('Asia/Seoul', new Date('2024-03-01T14:59:59Z'))).toBe('2024-03-01')
    expect(dayIn('Asia/Seoul', new Date('2024-03-01T15:00:00Z'))).toBe('2024-03-02')
  })

  it('follows daylight saving time where a zone has it', () => {
    expect(startOfDay('2024-03-10', 'America/New_York').toISOString()).toBe('2024-03-10T05:00:00.000Z')
    expect(startOfDay('2024-03-11', 'America/New_York').toISOString()).toBe('2024-03-11T04:00:00.000Z')
  })

  it('closes the lateness window 48 hours after the day ends', () => {
    expect(windowClosesAt('2024-03-01', 'Asia/Seoul', 48).toISOString()).toBe('2024-03-03T15:00:00.000Z')
    expect(lastDayPastWindow('Asia/Seoul', 48, new Date('2024-03-03T15:00:00Z'))).toBe('2024-03-01')
    expect(lastDayPastWindow('Asia/Seoul', 48, new Date('2024-03-03T14:59:59Z'))).toBe('2024-02-29')
    expect(lastDayPastWindow('UTC', 1, new Date('2024-03-03T01:00:00Z'))).toBe('2024-03-02')
  })
})
