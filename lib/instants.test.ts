import { describe, expect, it } from 'vitest'
import { apiInstant } from './instants.ts'

describe('apiInstant', () => {
  it("turns a UTC DateTime64's text into RFC 3339 with a Z and milliseconds", () => {
    expect(apiInstant('2026-12-06 22:17:48.475')).toBe('2026-12-06T22:17:48.475Z')
    expect(apiInstant('2026-12-06 22:17:48')).toBe('2026-12-06T22:17:48.000Z')
    expect(apiInstant('1970-01-01 00:00:00.000')).toBe('1970-01-01T00:00:00.000Z')
    expect(apiInstant('2026-02-28 23:59:59.9')).toBe('2026-02-28T23:59:59.900Z')
  })

  it('leaves an instant already in RFC 3339 UTC as it is (written by toISOString)', () => {
    expect(apiInstant('2026-12-06T22:17:48.475Z')).toBe('2026-12-06T22:17:48.475Z')
  })

  it('refuses text that names no instant in UTC rather than guessing a zone', () => {
    for (const text of ['', '2026-12-06', '2026-12-06T22:17:48+09:00', '2026-12-06T22:17:48.475', '2026-13-06 22:17:48.475', 'yesterday'])
      expect(() => apiInstant(text), text).toThrow(/not an instant/)
  })
})
