import { describe, expect, it } from 'vitest'
import { dateIn, nextWallClock } from './schedule.ts'

describe('nextWallClock', () => {
  it('finds 00:05 of the next Seoul day', () => {
    // 2026-03-01 16:00 UTC is 01:00 on 2 March in Seoul: the next 00:05 is on 3 March.
    expect(nextWallClock('Asia/Seoul', 0, 5, new Date('2026-03-01T16:00:00Z')).toISOString()).toBe('2026-03-02T15:05:00.000Z')
    // 2026-03-01 15:00 UTC is exactly midnight in Seoul: 00:05 is five minutes away.
    expect(nextWallClock('Asia/Seoul', 0, 5, new Date('2026-03-01T15:00:00Z')).toISOString()).toBe('2026-03-01T15:05:00.000Z')
  })

  it('follows daylight saving time', () => {
    // New York springs forward on 8 March 2026: midnight is then UTC-4.
    expect(nextWallClock('America/New_York', 0, 5, new Date('2026-03-08T12:00:00Z')).toISOString()).toBe('2026-03-09T04:05:00.000Z')
    expect(nextWallClock('America/New_York', 0, 5, new Date('2026-03-07T12:00:00Z')).toISOString()).toBe('2026-03-08T05:05:00.000Z')
  })

  it('tells the date in a zone', () => {
    expect(dateIn('Asia/Seoul', new Date('2026-03-01T15:30:00Z'))).toBe('2026-03-02')
    expect(dateIn('UTC', new Date('2026-03-01T15:30:00Z'))).toBe('2026-03-01')
  })
})
