import { describe, expect, it } from 'vitest'
import { formatKrw, formatTenths, parseKrw, safeNumber, wonFromTenths, wonFromTenthsSql } from './money.ts'

describe('money in tenths of a won', () => {
  it('parses the rates of SPEC §7 without floats', () => {
    expect(parseKrw('1.0')).toBe(10n)
    expect(parseKrw('1.1')).toBe(11n)
    expect(parseKrw('1.3')).toBe(13n)
    expect(parseKrw('12')).toBe(120n)
    expect(parseKrw(' 20 ')).toBe(200n)
    expect(parseKrw('0.1')).toBe(1n)
  })

  it('refuses amounts it cannot hold exactly', () => {
    for (const bad of ['', '-1', '1.15', '1e3', '1,000', '.5', 'NaN', '0x10']) expect(() => parseKrw(bad), bad).toThrow(RangeError)
  })

  it('truncates a line to whole won, never rounds', () => {
    expect(wonFromTenths(0n)).toBe(0n)
    expect(wonFromTenths(9n)).toBe(0n)
    expect(wonFromTenths(33n)).toBe(3n)
    expect(wonFromTenths(11_899_987n)).toBe(1_189_998n)
    expect(() => wonFromTenths(-1n)).toThrow(RangeError)
  })

  it('writes the same rule for SQL', () => {
    expect(wonFromTenthsSql('revenue_tenths')).toBe('intDiv(revenue_tenths, 10)')
  })

  it('formats won and tenths with separators', () => {
    expect(formatKrw(1_234_567n)).toBe('1,234,567')
    expect(formatKrw(0)).toBe('0')
    expect(formatKrw(999)).toBe('999')
    expect(formatTenths(11n)).toBe('1.1')
    expect(formatTenths(11_899_987n)).toBe('1,189,998.7')
  })

  it('hands 64-bit integers to JSON only when a number holds them exactly', () => {
    expect(safeNumber('9007199254740991')).toBe(9_007_199_254_740_991)
    expect(safeNumber(42)).toBe(42)
    expect(() => safeNumber('9007199254740992')).toThrow(RangeError)
  })
})
