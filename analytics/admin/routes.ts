import { Hono } from 'hono'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { runAdAssignment } from '../../jobs/ads/assign.ts'
import { SettlementError, settlementErrorCodes } from '../../jobs/settlement/errors.ts'
import { settle } from '../../jobs/settlement/job.ts'
import { addRateCard, listRateCards, type RateCard } from '../../jobs/settlement/rate-cards.ts'
import { listRuns, settledDays } from '../../jobs/settlement/runs.ts'
import { ApiError } from '../../lib/errors.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { isoDate, today } from '../http/dates.ts'
import { v } from '../http/validate.ts'

const runBody = z.object({ date: isoDate.optional().describe('Day to run for (default today in SETTLEMENT_TZ)') })
const settleBody = z
  .object({
    from: isoDate,
    to: isoDate,
    finalize: z.boolean().default(false).describe('Settle days past the lateness window as final (they never change afterwards)'),
    dry_run: z.boolean().default(false).describe('Price the days without writing anything'),
  })
  .refine((b) => b.from <= b.to, { message: 'from must not be after to', path: ['from'] })
const runsQuery = z.object({ from: isoDate.optional(), to: isoDate.optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) })
const tenths = z.number().int().min(0).max(1_000_000_000)
const rateCardBody = z.object({
  effective_from: isoDate,
  mode: z.enum(['graduated', 'volume']).default('graduated'),
  tier_floors: z.array(z.number().int().min(0)).min(1).max(32).describe('Lifetime count where each tier starts (first is 0)'),
  video_rates_tenths: z.array(tenths).min(1).max(32).describe('Video rate per view of each tier, in tenths of a won'),
  ad_rates_tenths: z.array(tenths).min(1).max(32).describe('Ad rate per impression of each tier, in tenths of a won'),
  note: z.string().max(500).optional(),
})

const jobTags = ['jobs (admin)']
const cardTags = ['rate cards (admin)']

function publicCard(card: RateCard) {
  return {
    version: card.version,
    effective_from: card.effectiveFrom,
    mode: card.mode,
    tier_floors: card.tierFloors.map(Number),
    video_rates_tenths: card.videoRatesTenths.map(Number),
    ad_rates_tenths: card.adRatesTenths.map(Number),
    note: card.note,
  }
}

async function settlementCall<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (err) {
    if (err instanceof SettlementError) throw new ApiError(settlementErrorCodes[err.code], err.message)
    throw err
  }
}

/** `/v1/admin/...`: job runs and reruns, rate cards (role admin). */
export function adminRoutes(deps: AnalyticsDeps) {
  const { services } = deps
  const { ch } = services
  const admin = deps.auth.require('admin')
  return new Hono<AnalyticsEnv>()
    .post('/admin/jobs/ad-assignment/runs', describeRoute({ tags: jobTags, summary: 'Run the ad-assignment job for a day (idempotent; skipped while another run holds the lock)' }), admin, v('json', runBody), async (c) => {
      const date = c.req.valid('json').date ?? today(services.settings.SETTLEMENT_TZ)
      return c.json(await runAdAssignment(services, { date, midRollMinVideoMs: deps.settings.MID_ROLL_MIN_VIDEO_MS }))
    })
    .get('/admin/jobs/settlement/runs', describeRoute({ tags: jobTags, summary: 'Recorded settlement runs, newest first' }), admin, v('query', runsQuery), async (c) => {
      const q = c.req.valid('query')
      return c.json({ rows: await listRuns(ch, q) })
    })
    .post('/admin/jobs/settlement/runs', describeRoute({ tags: jobTags, summary: 'Settle or resettle days (a final day never changes; refused while another run holds the lock)' }), admin, v('json', settleBody), async (c) => {
      const b = c.req.valid('json')
      const result = await settlementCall(() => settle(services, { kind: 'days', from: b.from, to: b.to, finalize: b.finalize, dryRun: b.dry_run, trigger: 'http' }))
      return c.json(result)
    })
    .get('/admin/rate-cards', describeRoute({ tags: cardTags, summary: 'Every rate card, oldest version first' }), admin, async (c) => c.json({ rows: (await listRateCards(ch)).map(publicCard) }))
    .post('/admin/rate-cards', describeRoute({ tags: cardTags, summary: 'Add a rate card version; it must take effect after the last final day', responses: { 201: { description: 'The new version' } } }), admin, v('json', rateCardBody), async (c) => {
      const b = c.req.valid('json')
      const lastFinal = (await settledDays(ch)).filter((d) => d.status === 'final').at(-1)?.day ?? null
      const card = await settlementCall(() =>
        addRateCard(
          ch,
          { effectiveFrom: b.effective_from, mode: b.mode, tierFloors: b.tier_floors.map(BigInt), videoRatesTenths: b.video_rates_tenths.map(BigInt), adRatesTenths: b.ad_rates_tenths.map(BigInt), note: b.note },
          lastFinal,
        ),
      )
      return c.json(publicCard(card), 201)
    })
}
