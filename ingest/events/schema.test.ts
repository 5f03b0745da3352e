import { z } from 'zod'
import { describe, expect, it } from 'vitest'
import { almostEvent, EDGE_TIMES, rng, value } from '../../test/harness/fuzz-values.ts'
import { envelopeRuntimeSchema, envelopeSchema, eventRuntimeSchema, eventSchema } from './schema.ts'

/** What a parse gives: the value, or the issues the runtime words. */
const outcome = (r: z.ZodSafeParseResult<unknown>) => (r.success ? { ok: r.data } : { issues: r.error.issues })

describe('the compiled event and envelope schemas', () => {
  it('are compiled by zod, not left to the runtime parser', () => {
    // strict: a schema zod's compiler cannot model throws instead of coming back unchanged.
    expect(() => z.compile(eventRuntimeSchema, { strict: true })).not.toThrow()
    expect(() => z.compile(envelopeRuntimeSchema, { strict: true })).not.toThrow()
  })

  it('parse every valid shape as the runtime does: lowercase ids, RFC 3339 times, unknown keys dropped', () => {
    const id = 'ABCDEF01-b0b0-4000-8000-00000000000A'
    const events = [
      { id, type: 'play', ts: 1_733_400_000_000, position_ms: 0 },
      { id, type: 'pause', ts: 0, position_ms: 7 * 24 * 3600 * 1000 },
      { id, type: 'seek', ts: 8.64e15, position_ms: 1 },
      { id, type: 'end', ts: '2026-12-05T10:00:00.123+09:00', position_ms: 5 },
      { id, type: 'progress', ts: 1, position_ms: 1000, watched_ms: 1000, extra: { deep: [1] } },
      { id, type: 'ad_impression', ts: '1969-07-20T20:17:40Z', position_ms: 0, ad_id: 'ad "x"\n\\' },
      ...EDGE_TIMES.filter((ts) => ts !== '2026-02-29T00:00:00Z').map((ts) => ({ id: crypto.randomUUID(), type: 'progress', ts, position_ms: 0, watched_ms: 0 })),
    ]
    // 2026 has no 29 February: refused by both.
    expect(eventSchema.safeParse({ ...events[0], ts: '2026-02-29T00:00:00Z' }).success).toBe(false)
    for (const e of events) {
      const compiled = eventSchema.safeParse(e)
      expect(compiled.success, JSON.stringify(e)).toBe(true)
      expect(outcome(compiled)).toStrictEqual(outcome(eventRuntimeSchema.safeParse(e)))
    }
    expect(eventSchema.parse(events[0])).toStrictEqual({ id: id.toLowerCase(), type: 'play', ts: 1_733_400_000_000, position_ms: 0 })
    expect(eventSchema.parse(events[3]).ts).toBe(Date.parse('2026-12-05T10:00:00.123+09:00'))
  })

  it('agree with the runtime on 20,000 fuzzed items: the same value, or the same issues', () => {
    const r = rng(20261205)
    let valid = 0
    for (let i = 0; i < 20_000; i++) {
      const item = i % 4 === 0 ? value(r) : i % 4 === 1 ? { ...almostEvent(r), ts: EDGE_TIMES[Math.floor(r() * EDGE_TIMES.length)] } : almostEvent(r)
      const compiled = outcome(eventSchema.safeParse(item))
      expect(compiled, JSON.stringify(item)).toStrictEqual(outcome(eventRuntimeSchema.safeParse(item)))
      if ('ok' in compiled) valid++
    }
    // Both sides of the fast path were reached.
    expect(valid).toBeGreaterThan(1_000)
    expect(valid).toBeLessThan(18_000)
  })

  it('check the envelope as the runtime does', () => {
    const r = rng(5)
    const bodies: unknown[] = [{ events: [] }, { events: Array(501).fill(1) }, { events: Array(500).fill(1) }, { events: 'x' }, {}, null, [], { events: [1], more: 2 }]
    for (let i = 0; i < 2_000; i++) bodies.push(i % 2 ? value(r) : { events: Array.from({ length: Math.floor(r() * 4) }, () => value(r)) })
    for (const b of bodies) expect(outcome(envelopeSchema.safeParse(b))).toStrictEqual(outcome(envelopeRuntimeSchema.safeParse(b)))
    expect(envelopeSchema.safeParse({ events: [] }).error?.issues[0]?.message).toBe('events must hold at least one event')
  })
})
