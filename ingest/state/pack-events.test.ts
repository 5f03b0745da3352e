import { describe, expect, it } from 'vitest'
import { EVENT_WIDTH, packEvents, type RuleInput } from './decide.ts'

const id = '0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d'
const event = (fields: Partial<RuleInput>): RuleInput => ({ id, type: 'progress', ts: 1_764_000_000_123, positionMs: 30_000, watchedMs: 1_000, adId: '', preRejected: '', ...fields })

describe('packEvents (the batch as ingest.lua reads it)', () => {
  it('puts each field at the offset the script cuts it from, zero-padded, the reason after the fixed part', () => {
    const packed = packEvents([event({}), event({ type: 'ad_impression', adId: 'ad-2', positionMs: 0, watchedMs: 0, preRejected: 'too_late' })], ['ad-1', 'ad-2'])
    const [progress, ad] = packed.split('\x1e')
    // ingest.lua: id at 1 (36), type at 37, ts at 38 (16), position at 54 (10), watched at 64 (10), ad at 74 (2), reason from 76.
    expect(progress).toBe(`${id}g${"0001764000000123"}${"0000030000"}${"0000001000"}00`)
    expect(progress).toHaveLength(EVENT_WIDTH)
    expect(ad!.slice(36, 37)).toBe('a')
    expect(ad!.slice(73, 75)).toBe('02')
    expect(ad!.slice(EVENT_WIDTH)).toBe('too_late')
  })

  it('sends a ts before 1970 as 0 (such an event is rejected as too late before the script)', () => {
    expect(packEvents([event({ ts: -14_182_940_000 })], []).slice(37, 53)).toBe('0'.repeat(16))
  })

  it('refuses what cannot fit, rather than sending a record the script would misread', () => {
    expect(() => packEvents([event({ id: 'not-a-uuid' })], [])).toThrow(/not a UUID/)
    expect(() => packEvents([event({ positionMs: 10_000_000_000 })], [])).toThrow(/position/)
    expect(() => packEvents([event({ watchedMs: 1.5 })], [])).toThrow(/watched/)
  })
})
