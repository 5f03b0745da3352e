import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rows } from '../harness/engines.ts'
import { watchEmbeddedStatements } from '../../lib/clickhouse.ts'
import { startTestServices, type TestServices } from '../harness/services.ts'
import { settle } from '../../jobs/settlement/job.ts'
import { settlementByAd, settlementByVideo, settlementTotals, visibleRuns } from '../../jobs/settlement/queries.ts'
import { addRateCard, listRateCards, priceUnits, type RateCard } from '../../jobs/settlement/rate-cards.ts'
import { listRuns } from '../../jobs/settlement/runs.ts'
import { clockAt, putImpressionsBatch, putViewsBatch } from './fixtures.ts'

/*
 * Properties over generated inputs (a seeded generator, so a failure reproduces):
 * histories and day counts drawn around the tier boundaries, priced by the job in SQL.
 *
 *   27 May          history of every video (and every video-ad pair)
 *   28 .. 31 May    graduated: twins for monotonicity; units in one day vs split over 2-4 days
 *   1 June          a volume-mode card: twins for monotonicity again
 *   2 June          a graduated card of three odd tiers: twins again
 *   3 June          a volume card with a single tier: twins again
 */

const SEED = 20240527
function generator(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  const boundaries = [100_000, 500_000, 1_000_000]
  /** A lifetime count: often just below a tier boundary, so days cross it. */
  const history = () => (next() < 0.6 ? Math.max(0, boundaries[int(0, 2)]! - int(0, 300)) : int(0, 1_200_000))
  return { int, history }
}

const N = 120
const CREATORS = ['cr-a', 'cr-b', 'cr-c', 'cr-d']
const SPLIT_DAYS = ['2024-05-28', '2024-05-29', '2024-05-30', '2024-05-31']
let s: TestServices
let cards: RateCard[]
let lineStatements = 0

type Line = { day: string; video_id: string; ad_id?: string; before: string; units: string; tenths: string; krw: string; rate_card_version: number; pricing_mode: string }

async function lines(kind: 'video' | 'ad'): Promise<Line[]> {
  const q =
    kind === 'video'
      ? `SELECT day, video_id, views_before AS before, views AS units, revenue_tenths AS tenths, revenue_krw AS krw, rate_card_version, pricing_mode FROM settlement_video_lines`
      : `SELECT day, video_id, ad_id, impressions_before AS before, impressions AS units, revenue_tenths AS tenths, revenue_krw AS krw, rate_card_version, pricing_mode FROM settlement_ad_lines`
  return rows<Line>(s.ch, `${q} WHERE run_id IN (SELECT run_id FROM settlement_days) ORDER BY day, video_id`)
}

beforeAll(async () => {
  s = await startTestServices({ LOG_LEVEL: 'error' })
  const g = generator(SEED)
  const views: Parameters<typeof putViewsBatch>[1] = []
  const impressions: Parameters<typeof putImpressionsBatch>[1] = []
  for (let i = 0; i < N; i++) {
    const creator = CREATORS[i % CREATORS.length]!
    const h = g.history()
    const v = (video: string, day: string, n: number) => views.push({ day, video, creator, views: n })
    // twins: same history, the second gets more views on the day
    const units = g.int(0, 2_000)
    v(`p-${i}`, '2024-05-27', h)
    v(`q-${i}`, '2024-05-27', h)
    v(`p-${i}`, '2024-05-28', units)
    v(`q-${i}`, '2024-05-28', units + g.int(1, 500))
    v(`p-${i}`, '2024-06-01', units)
    v(`q-${i}`, '2024-06-01', units + g.int(1, 500))
    v(`p-${i}`, '2024-06-02', units)
    v(`q-${i}`, '2024-06-02', units + g.int(1, 500))
    v(`p-${i}`, '2024-06-03', units)
    v(`q-${i}`, '2024-06-03', units + g.int(1, 500))
    // the same units in one day, or split over 2 to 4 days
    const total = g.int(1, 5_000)
    v(`one-${i}`, '2024-05-27', h)
    v(`split-${i}`, '2024-05-27', h)
    v(`one-${i}`, '2024-05-28', total)
    const k = g.int(2, 4)
    let left = total
    for (let d = 0; d < k; d++) {
      const n = d === k - 1 ? left : g.int(0, left)
      left -= n
      v(`split-${i}`, SPLIT_DAYS[d]!, n)
    }
    // ads: two ads on a video, each with its own history and split
    for (const ad of ['ad-1', 'ad-2']) {
      const ah = g.history()
      const au = g.int(1, 3_000)
      impressions.push({ day: '2024-05-27', video: `one-${i}`, ad, creator, impressions: ah })
      impressions.push({ day: '2024-05-27', video: `split-${i}`, ad, creator, impressions: ah })
      impressions.push({ day: '2024-05-28', video: `one-${i}`, ad, creator, impressions: au })
      const first = g.int(0, au)
      impressions.push({ day: '2024-05-28', video: `split-${i}`, ad, creator, impressions: first })
      impressions.push({ day: '2024-05-29', video: `split-${i}`, ad, creator, impressions: au - first })
    }
  }
  await putViewsBatch(s.ch, views)
  await putImpressionsBatch(s.ch, impressions.filter((r) => r.impressions > 0))
  await addRateCard(s.ch, { effectiveFrom: '2024-06-01', mode: 'volume', tierFloors: [0n, 100_000n, 500_000n, 1_000_000n], videoRatesTenths: [10n, 11n, 13n, 15n], adRatesTenths: [100n, 120n, 150n, 200n] }, null)
  await addRateCard(s.ch, { effectiveFrom: '2024-06-02', mode: 'graduated', tierFloors: [0n, 7n, 1_000n], videoRatesTenths: [3n, 5n, 9n], adRatesTenths: [1n, 2n, 4n] }, null)
  await addRateCard(s.ch, { effectiveFrom: '2024-06-03', mode: 'volume', tierFloors: [0n], videoRatesTenths: [7n], adRatesTenths: [70n] }, null)
  cards = await listRateCards(s.ch)
  // In statements of at most 37 lines (each over a share of the videos), so
  // that every property below holds of lines written in shares too.
  const unwatch = watchEmbeddedStatements(s.ch, (t) => t.queryId?.includes('settlement-') && lineStatements++)
  await settle(s, { kind: 'days', from: '2024-05-27', to: '2024-06-03', finalize: true, trigger: 'test' }, { now: clockAt('2024-07-01T00:00:00+09:00'), statementRows: 37 })
  unwatch!()
}, 120_000)
afterAll(() => s?.stopAll())

describe('settlement properties over generated inputs', () => {
  it('wrote the lines in many statements (a share of the videos each)', () => {
    // 480 videos on 27 May alone: 13 statements for its video lines; 8 days, two kinds of line
    expect(lineStatements).toBeGreaterThan(8 * 2 + 12)
  })

  it('prices every line exactly as the rate card says (SQL against the TypeScript rule)', async () => {
    for (const kind of ['video', 'ad'] as const) {
      const all = await lines(kind)
      expect(all.length).toBeGreaterThan(N * 4)
      for (const l of all) {
        const card = cards.find((c) => c.version === l.rate_card_version)!
        const rates = kind === 'video' ? card.videoRatesTenths : card.adRatesTenths
        const expected = priceUnits(card.tierFloors, rates, card.mode, BigInt(l.before), BigInt(l.units))
        expect(BigInt(l.tenths), `${kind} ${l.video_id} ${l.ad_id ?? ''} ${l.day}`).toBe(expected)
        expect(BigInt(l.krw)).toBe(expected / 10n)
      }
    }
  })

  it('never pays less for more views, in graduated and in volume mode', async () => {
    const all = await lines('video')
    const at = (day: string, video: string) => all.find((l) => l.day === day && l.video_id === video)
    for (const day of ['2024-05-28', '2024-06-01', '2024-06-02', '2024-06-03']) {
      for (let i = 0; i < N; i++) {
        const p = at(day, `p-${i}`)
        const q = at(day, `q-${i}`)!
        expect(BigInt(q.tenths)).toBeGreaterThanOrEqual(BigInt(p?.tenths ?? 0))
        expect(BigInt(q.krw)).toBeGreaterThanOrEqual(BigInt(p?.krw ?? 0))
      }
    }
  })

  it('prices units split over days exactly like one day, up to the truncation of each line', async () => {
    for (const kind of ['video', 'ad'] as const) {
      const all = (await lines(kind)).filter((l) => l.day !== '2024-05-27')
      for (let i = 0; i < N; i++) {
        for (const ad of kind === 'video' ? [undefined] : ['ad-1', 'ad-2']) {
          const one = all.filter((l) => l.video_id === `one-${i}` && l.ad_id === ad)
          const split = all.filter((l) => l.video_id === `split-${i}` && l.ad_id === ad)
          expect(one).toHaveLength(1)
          const sum = (ls: Line[], f: 'tenths' | 'krw') => ls.reduce((acc, l) => acc + BigInt(l[f]), 0n)
          expect(sum(split, 'tenths'), `${kind} ${i} ${ad ?? ''}`).toBe(sum(one, 'tenths'))
          const lost = sum(one, 'krw') - sum(split, 'krw')
          expect(lost >= 0n && lost < BigInt(Math.max(1, split.length))).toBe(true)
        }
      }
    }
  })

  it('reports totals that are the sums of the lines, at every grain, per creator, video and ad', async () => {
    const range = { from: '2024-05-01', to: '2024-06-30' }
    const visible = await visibleRuns(s.ch)
    for (const creatorId of [undefined, ...CREATORS]) {
      const filter = creatorId === undefined ? '' : 'AND creator_id = {c:String}'
      const [v] = await rows<{ views: string; krw: string }>(s.ch, `SELECT sum(views) AS views, sum(revenue_krw) AS krw FROM settlement_video_lines WHERE run_id IN (SELECT run_id FROM settlement_days) ${filter}`, { c: creatorId })
      const [a] = await rows<{ n: string; krw: string }>(s.ch, `SELECT sum(impressions) AS n, sum(revenue_krw) AS krw FROM settlement_ad_lines WHERE run_id IN (SELECT run_id FROM settlement_days) ${filter}`, { c: creatorId })
      for (const grain of ['day', 'week', 'month', 'year'] as const) {
        const totals = await settlementTotals(s.ch, { ...range, grain, creatorId })
        const sum = (f: 'views' | 'video_revenue_krw' | 'ad_impressions' | 'ad_revenue_krw' | 'total_krw') => totals.reduce((acc, t) => acc + t[f], 0)
        expect([sum('views'), sum('video_revenue_krw'), sum('ad_impressions'), sum('ad_revenue_krw'), sum('total_krw')], `${creatorId} ${grain}`).toEqual([
          Number(v!.views),
          Number(v!.krw),
          Number(a!.n),
          Number(a!.krw),
          Number(v!.krw) + Number(a!.krw),
        ])
        const byVideo = await settlementByVideo(s.ch, { ...range, grain, creatorId })
        for (const t of totals) {
          const videos = byVideo.filter((b) => b.period === t.period)
          expect(videos.reduce((acc, b) => acc + b.total_krw, 0)).toBe(t.total_krw)
        }
        const byAd = await settlementByAd(s.ch, { ...range, grain, creatorId })
        expect(byAd.reduce((acc, b) => acc + b.ad_revenue_krw, 0)).toBe(sum('ad_revenue_krw'))
        // The same three answers with the visible runs bound from a snapshot instead of evaluated in the statement.
        expect([
          await settlementTotals(s.ch, { ...range, grain, creatorId }, visible),
          await settlementByVideo(s.ch, { ...range, grain, creatorId }, visible),
          await settlementByAd(s.ch, { ...range, grain, creatorId }, visible),
        ]).toEqual([totals, byVideo, byAd])
      }
    }
  })

  it('walks the per-video listing a page at a time, the platform\'s and a creator\'s of many lines, at every grain, to the listing grouped whole', async () => {
    // 480 lines on 27 May, 240–480 on the other days: pages of 50 cut the days, pages of 1,000 take whole periods at once.
    // A creator's pages are read as the platform's when its lines are many (here: at least one).
    const range = { from: '2024-05-01', to: '2024-06-30' }
    for (const [creatorId, periodPageLines] of [[undefined, undefined], ['cr-b', 1]] as const) {
      for (const visible of [undefined, await visibleRuns(s.ch)]) {
        // A creator's day pages are read as the platform's whatever its lines: its longer grains are what differs.
        for (const grain of creatorId ? (['week', 'year'] as const) : (['day', 'week', 'month', 'year'] as const)) {
          const whole = await settlementByVideo(s.ch, { ...range, grain, creatorId })
          expect(whole.length).toBeGreaterThanOrEqual(creatorId ? N : N * 4)
          expect(whole.every((r) => creatorId === undefined || r.creator_id === creatorId)).toBe(true)
          for (const limit of creatorId ? [7, 50] : [7, 50, 333, 1_000]) {
            if (limit === 7 && grain !== 'year') continue // pages of a few rows: one grain is enough
            const rows: typeof whole = []
            let after: string[] | undefined
            for (let pages = 0; pages <= whole.length; pages++) {
              const page = await settlementByVideo(s.ch, { ...range, grain, creatorId, limit, after }, visible, { periodPageLines })
              expect(page.length, `${grain} ${limit}`).toBeLessThanOrEqual(limit + 1)
              rows.push(...page.slice(0, limit))
              if (page.length <= limit) break
              // Every page but the last is full: the one row more tells that a next page follows.
              expect(page.length).toBe(limit + 1)
              const last = page[limit - 1]!
              after = [last.period, last.creator_id, last.video_id]
            }
            expect(rows, `${creatorId} ${grain} ${limit} ${visible ? 'snapshot' : ''}`).toEqual(whole)
          }
        }
      }
    }
  }, 120_000)

  it('walks a creator\'s per-ad listing of many lines a page at a time, at every grain, to the listing grouped whole', async () => {
    const range = { from: '2024-05-01', to: '2024-06-30' }
    const visible = await visibleRuns(s.ch)
    for (const grain of ['day', 'week', 'year'] as const) {
      const q = { ...range, grain, creatorId: 'cr-b' }
      const whole = await settlementByAd(s.ch, q)
      expect(whole.length).toBeGreaterThan(N / 2)
      for (const limit of [7, 50]) {
        const rows: typeof whole = []
        let after: string[] | undefined
        for (let pages = 0; pages <= whole.length; pages++) {
          // Read the platform's way: the threshold of lines lowered to one.
          const page = await settlementByAd(s.ch, { ...q, limit, after }, visible, { periodPageLines: 1 })
          rows.push(...page.slice(0, limit))
          if (page.length <= limit) break
          expect(page.length).toBe(limit + 1)
          const last = page[limit - 1]!
          after = [last.period, last.video_id, last.ad_id]
        }
        expect(rows, `${grain} ${limit}`).toEqual(whole)
      }
    }
  })

  it('reads a creator\'s pages as the platform\'s only when its lines are many', async () => {
    const statements: string[] = []
    const unwatch = watchEmbeddedStatements(s.ch, (t) => void statements.push(t.statement))
    const q = { from: '2024-05-01', to: '2024-06-30', grain: 'month' as const, creatorId: 'cr-c', limit: 10 }
    const few = await settlementByVideo(s.ch, q)
    const cuts = () => statements.filter((t) => t.includes('max((creator_id, video_id))')).length
    expect(cuts()).toBe(0)
    expect(await settlementByVideo(s.ch, q, undefined, { periodPageLines: 1 })).toEqual(few)
    expect(cuts()).toBeGreaterThan(0)
    const fewAds = await settlementByAd(s.ch, q)
    const adCuts = () => statements.filter((t) => t.includes('max((video_id, ad_id))')).length
    expect(adCuts()).toBe(0)
    expect(await settlementByAd(s.ch, q, undefined, { periodPageLines: 1 })).toEqual(fewAds)
    expect(adCuts()).toBeGreaterThan(0)
    unwatch!()
  })

  it('records run totals equal to the sums of their lines', async () => {
    const runs = (await listRuns(s.ch, { limit: 1000 })).filter((r) => r.state === 'committed')
    const daily = await settlementTotals(s.ch, { grain: 'day', from: '2024-05-27', to: '2024-06-03' })
    for (const d of daily) {
      const r = runs.find((x) => x.day === d.period)!
      expect([r.views, r.video_revenue_krw, r.ad_impressions, r.ad_revenue_krw]).toEqual([d.views, d.video_revenue_krw, d.ad_impressions, d.ad_revenue_krw])
    }
  })
})
