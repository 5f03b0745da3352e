/**
 * Money of the settlement: integers in tenths of a won (0.1 KRW), as `bigint` in
 * TypeScript and `UInt64` in ClickHouse. Never a float.
 *
 * The one rounding rule: a line (the video revenue of a video-day, or the revenue
 * of one ad on a video-day) is **truncated** to whole won; totals are sums of
 * truncated lines, so day, week, month and year figures reconcile exactly.
 *
 * @example
 * parseKrw('1.1')              // 11n tenths
 * wonFromTenths(2_099n)        // 209n won
 * formatKrw(1_234_567n)        // '1,234,567'
 */

/** Tenths of a won per won. */
export const TENTHS_PER_WON = 10n

/** The truncation rule: whole won of an exact line amount in tenths (amounts are never negative). */
export function wonFromTenths(tenths: bigint): bigint {
  if (tenths < 0n) throw new RangeError(`money amounts are never negative (got ${tenths} tenths)`)
  return tenths / TENTHS_PER_WON
}

/**
 * The same truncation rule as SQL, for an integer column or expression of tenths
 * (an identifier or expression written in code, never a value).
 *
 * @example
 * `${wonFromTenthsSql('revenue_tenths')} AS revenue_krw` // 'intDiv(revenue_tenths, 10) AS revenue_krw'
 */
export function wonFromTenthsSql(tenthsExpr: string): string {
  return `intDiv(${tenthsExpr}, ${TENTHS_PER_WON})`
}

const KRW = /^(\d{1,15})(?:\.(\d))?$/

/**
 * Parses a rate or an amount written in won with at most one decimal ("1", "1.1", "12.0")
 * into tenths of a won, without going through a float.
 *
 * @throws RangeError for anything else (negative, two decimals, exponent, empty)
 */
export function parseKrw(text: string): bigint {
  const m = KRW.exec(text.trim())
  if (!m) throw new RangeError(`not an amount in won with at most one decimal: ${JSON.stringify(text)}`)
  return BigInt(m[1]!) * TENTHS_PER_WON + BigInt(m[2] ?? '0')
}

/** Tenths of a won as won with one decimal: 11n -> '1.1', 120n -> '12.0'. */
export function formatTenths(tenths: bigint): string {
  const sign = tenths < 0n ? '-' : ''
  const abs = tenths < 0n ? -tenths : tenths
  return `${sign}${groupThousands(abs / TENTHS_PER_WON)}.${abs % TENTHS_PER_WON}`
}

/** Whole won with thousands separators: 1234567n -> '1,234,567'. */
export function formatKrw(won: bigint | number): string {
  const v = typeof won === 'number' ? BigInt(won) : won
  return v < 0n ? `-${groupThousands(-v)}` : groupThousands(v)
}

function groupThousands(v: bigint): string {
  return v.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/**
 * A ClickHouse 64-bit integer (a JSON string, or a number for small values) as a
 * `number`, refusing values a double cannot hold exactly. For totals handed to JSON APIs.
 */
export function safeNumber(value: string | number | bigint): number {
  const big = typeof value === 'bigint' ? value : BigInt(value)
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER))
    throw new RangeError(`${big} does not fit a JSON number exactly`)
  return Number(big)
}
