import { z } from 'zod'

export type Grain = 'day' | 'week' | 'month' | 'year'

/** A calendar date `YYYY-MM-DD` that exists. */
export const isoDate = z.iso.date()

const DAY_MS = 86_400_000

// Plain arithmetic rather than parsing date strings: these run for every period of every request.
function parse(date: string): Date {
  const d = new Date(0)
  // setUTCFullYear, unlike Date.UTC, takes years below 100 as they are.
  d.setUTCFullYear(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10)))
  return d
}

function format(d: Date): string {
  const [m, day] = [d.getUTCMonth() + 1, d.getUTCDate()]
  return `${String(d.getUTCFullYear()).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${day < 10 ? '0' : ''}${day}`
}

/** One formatter per time zone: making one costs far more than using it. */
const dayFormatters = new Map<string, Intl.DateTimeFormat>()

/** Today's date in a time zone. */
export function today(timeZone: string, now = new Date()): string {
  let f = dayFormatters.get(timeZone)
  if (!f) dayFormatters.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })))
  return f.format(now)
}

export function addDays(date: string, days: number): string {
  return format(new Date(parse(date).getTime() + days * DAY_MS))
}

/** First day of the period of `grain` that holds `date` (weeks start on Monday). */
export function periodStart(grain: Grain, date: string): string {
  const d = parse(date)
  if (grain === 'day') return date
  if (grain === 'week') return addDays(date, -((d.getUTCDay() + 6) % 7))
  if (grain === 'month') return format(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)))
  return format(new Date(Date.UTC(d.getUTCFullYear(), 0, 1)))
}

/** Start of the period of `grain` after the one starting at `start`. */
export function nextPeriod(grain: Grain, start: string): string {
  const d = parse(start)
  if (grain === 'day') return addDays(start, 1)
  if (grain === 'week') return addDays(start, 7)
  if (grain === 'month') return format(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)))
  return format(new Date(Date.UTC(d.getUTCFullYear() + 1, 0, 1)))
}

/** Last day of the period of `grain` starting at `start`. */
export function periodEnd(grain: Grain, start: string): string {
  return addDays(nextPeriod(grain, start), -1)
}

/** Lists made lately, most recent last: a request asks for the same range three times, and its neighbours for the same ones. */
const recentRanges = new Map<string, readonly string[]>()
const RECENT_RANGES_MAX = 512

/**
 * The starts of every period of `grain` that overlaps [from, to], in order (at most
 * `max` + 1 of them). The list is shared between callers, hence frozen.
 */
export function periodsBetween(grain: Grain, from: string, to: string, max = Infinity): readonly string[] {
  const key = `${grain} ${from} ${to} ${max}`
  const known = recentRanges.get(key)
  if (known) return known
  const out: string[] = []
  for (let p = periodStart(grain, from); p <= to; p = nextPeriod(grain, p)) {
    out.push(p)
    if (out.length > max) break
  }
  if (recentRanges.size >= RECENT_RANGES_MAX) recentRanges.delete(recentRanges.keys().next().value as string)
  recentRanges.set(key, Object.freeze(out))
  return out
}

function validDates(q: { from: unknown; to: unknown; grain: unknown }): q is { from: string; to: string; grain: Grain } {
  return isoDate.safeParse(q.from).success && isoDate.safeParse(q.to).success && typeof q.grain === 'string' && q.grain in maxPeriods
}

/** Most periods one request may ask for, per grain. */
export const maxPeriods: Record<Grain, number> = { day: 400, week: 260, month: 120, year: 20 }

/**
 * Query parameters of a period range: grain, from, to (inclusive dates), checked
 * for order and bounded in size.
 */
export const rangeQuery = z
  .object({
    grain: z.enum(['day', 'week', 'month', 'year']).default('day').describe('Size of each period; weeks start on Monday, all in SETTLEMENT_TZ'),
    from: isoDate.describe('First date (inclusive); the period holding it is reported whole'),
    to: isoDate.describe('Last date (inclusive)'),
    format: z.enum(['json', 'csv']).default('json').describe('csv returns text/csv with a header row'),
  })
  // Zod runs these even when a field already failed: they pass over dates that are not
  // valid (that failure is reported on its own) instead of doing arithmetic on them.
  .refine((q) => !validDates(q) || q.from <= q.to, { message: 'from must not be after to', path: ['from'] })
  .refine((q) => !validDates(q) || periodsBetween(q.grain, q.from, q.to, maxPeriods[q.grain]).length <= maxPeriods[q.grain], {
    message: 'range too long for this grain (at most 400 days, 260 weeks, 120 months or 20 years)',
    path: ['to'],
  })

export type RangeQuery = z.infer<typeof rangeQuery>
