import { z } from 'zod'

export type Grain = 'day' | 'week' | 'month' | 'year'

/** A calendar date `YYYY-MM-DD` that exists. */
export const isoDate = z.iso.date()

const DAY_MS = 86_400_000

function parse(date: string): Date {
  return new Date(`${date}T00:00:00Z`)
}

function format(d: Date): string {
  return d.toISOString().slice(0, 10)
}

/** Today's date in a time zone. */
export function today(timeZone: string, now = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now)
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

function nextPeriod(grain: Grain, start: string): string {
  const d = parse(start)
  if (grain === 'day') return addDays(start, 1)
  if (grain === 'week') return addDays(start, 7)
  if (grain === 'month') return format(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)))
  return format(new Date(Date.UTC(d.getUTCFullYear() + 1, 0, 1)))
}

/** The starts of every period of `grain` that overlaps [from, to], in order. */
export function periodsBetween(grain: Grain, from: string, to: string, max = Infinity): string[] {
  const out: string[] = []
  for (let p = periodStart(grain, from); p <= to; p = nextPeriod(grain, p)) {
    out.push(p)
    if (out.length > max) break
  }
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
