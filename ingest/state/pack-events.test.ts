import { describe, expect, it } from 'vitest'
import { EVENT_WIDTH, eventField, packEvents, type RuleInput } from './decide.ts'

const id = '0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d'
const event = (fields: Partial<RuleInput>): RuleInput => ({ id, type: 'progress', ts: 1_764_000_000_123, positionMs: 30_000, watchedMs: 1_000, adId: '', preRejected: '', ...fields })

describe('eventField (an event id as the field of its decision)', () => {
  it("is the UUID's 16 bytes in Z85: RFC 32's test vector, twice", () => {
    // RFC 32: the bytes 86 4F D2 6F B5 59 F7 5B encode as "HelloWorld".
    expect(eventField('864fd26f-b559-f75b-864f-d26fb559f75b')).toBe('HelloWorldHelloWorld')
    expect(eventField('00000000-0000-0000-0000-000000000000')).toBe('0'.repeat(20))
    expect(eventField('ffffffff-ffff-ffff-ffff-ffffffffffff')).toBe('%nSc0'.repeat(4))
  })

  it('gives one field for either case of the hex digits, and distinct fields for distinct ids', () => {
    expect(eventField(id.toUpperCase())).toBe(eventField(id))
    const fields = new Set(Array.from({ length: 10_000 }, () => eventField(crypto.randomUUID())))
    expect(fields.size).toBe(10_000)
    for (const f of fields) expect(f).toMatch(/^[^|\x1e\x1f\s'"]{20}$/)
  })

  it('refuses what is not a UUID', () => {
    expect(() => eventField('not-a-uuid')).toThrow(/not a UUID/)
    expect(() => eventField(`${id.slice(0, 35)}g`)).toThrow(/not a UUID/)
  })
})

describe('packEvents (the batch as ingest.lua reads it)', () => {
  it('puts each field at the offset the script cuts it from, zero-padded, the reasons after the records', () => {
    const packed = packEvents([event({}), event({ id: crypto.randomUUID(), type: 'ad_impression', adId: 'ad-2', positionMs: 0, watchedMs: 0, preRejected: 'too_late' })], ['ad-1', 'ad-2'])
    const [progress, ad] = [packed.slice(0, EVENT_WIDTH), packed.slice(EVENT_WIDTH, 2 * EVENT_WIDTH)]
    // ingest.lua: id's field at 1 (20), type at 21, ts at 22 (16), position at 38 (10), watched at 48 (10), ad at 58 (2).
    expect(progress).toBe(`${eventField(id)}g${'0001764000000123'}${'0000030000'}${'0000001000'}00`)
    expect(ad!.slice(20, 21)).toBe('a')
    expect(ad!.slice(57, 59)).toBe('02')
    expect(packed.slice(2 * EVENT_WIDTH)).toBe('\x1e2\x1ftoo_late')
  })

  it('marks a batch that repeats an id (the script keeps its decisions by id only then)', () => {
    const other = event({ id: crypto.randomUUID() })
    const plain = packEvents([event({}), other], [])
    expect(plain).toHaveLength(2 * EVENT_WIDTH)
    // The same UUID in either case is the same id.
    const repeated = packEvents([event({}), other, event({ id: id.toUpperCase(), preRejected: 'future_timestamp' })], [])
    expect(repeated.slice(3 * EVENT_WIDTH)).toBe('\x1e*\x1e3\x1ffuture_timestamp')
  })

  it('packs any batch as the records written out field by field, one after another (and past its first buffer)', () => {
    const ads = ['ad-1', 'ad-2', 'ad-3']
    const types = ['play', 'pause', 'seek', 'end', 'progress', 'ad_impression'] as const
    const reasons = ['', '', 'too_late', 'future_timestamp', 'position_out_of_range']
    const pad = (n: number, w: number) => String(n).padStart(w, '0')
    for (const size of [1, 30, 500, 3_000]) {
      const batch = Array.from({ length: size }, (_, i) =>
        event({
          id: crypto.randomUUID(),
          type: types[i % types.length],
          ts: Math.floor(Math.random() * 8.64e15),
          positionMs: Math.floor(Math.random() * 604_800_000),
          watchedMs: i % 3 === 0 ? 0 : Math.floor(Math.random() * 9_999_999_999),
          adId: ads[i % 4] ?? 'not-served',
          preRejected: reasons[i % reasons.length],
        }),
      )
      const records = batch.map((e) => {
        const ad = e.type === 'ad_impression' ? ads.indexOf(e.adId) + 1 : 0
        return `${eventField(e.id)}${{ play: 'p', pause: 'u', seek: 's', end: 'e', progress: 'g', ad_impression: 'a' }[e.type]}${pad(e.ts, 16)}${pad(e.positionMs, 10)}${pad(e.watchedMs, 10)}${pad(ad, 2)}`
      })
      const listed = batch.map((e, i) => (e.preRejected ? `\x1e${i + 1}\x1f${e.preRejected}` : ''))
      expect(packEvents(batch, ads)).toBe(records.join('') + listed.join(''))
    }
    expect(packEvents([], ads)).toBe('')
  })

  it('sends a ts before 1970 as 0 (such an event is rejected as too late before the script)', () => {
    expect(packEvents([event({ ts: -14_182_940_000 })], []).slice(21, 37)).toBe('0'.repeat(16))
    // The largest ts that fits keeps its last digit (48 + value would round past 2^53).
    expect(packEvents([event({ ts: Number.MAX_SAFE_INTEGER })], []).slice(21, 37)).toBe('9007199254740991')
  })

  it('refuses what cannot fit, rather than sending a record the script would misread', () => {
    expect(() => packEvents([event({ id: 'not-a-uuid' })], [])).toThrow(/not a UUID/)
    expect(() => packEvents([event({ positionMs: 10_000_000_000 })], [])).toThrow(/position/)
    expect(() => packEvents([event({ watchedMs: 1.5 })], [])).toThrow(/watched/)
    expect(() => packEvents([event({ ts: 1e16 })], [])).toThrow(/ts 10000000000000000 does not fit 16 digits/)
    expect(() => packEvents([event({ positionMs: Number.NaN })], [])).toThrow(/position/)
  })
})
