import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServices, type TestServices } from '../harness/services.ts'
import { settle } from '../../jobs/settlement/job.ts'
import { settlementByAd, settlementByVideo, settlementTotals } from '../../jobs/settlement/queries.ts'
import { addRateCard } from '../../jobs/settlement/rate-cards.ts'
import { adLines, clockAt, putImpressions, putViews, videoLines } from './fixtures.ts'

/*
 * Golden tables, computed by hand from SPEC §7 (rates in tenths of a won):
 *   tier            n                      video   ad
 *   1               1 .. 100,000           10      100
 *   2         100,001 .. 500,000           11      120
 *   3         500,001 .. 1,000,000         13      150
 *   4       1,000,001 ..                   15      200
 * January 2024 (Jan 1 is a Monday), all days final. Card v2 (volume mode, default rates)
 * takes effect on Jan 8; card v3 (graduated, doubled video rates) on Jan 15.
 */

let s: TestServices
const now = clockAt('2024-03-01T00:00:00+09:00')

async function line(day: string, video: string) {
  const found = (await videoLines(s.ch, day)).find((l) => l.video_id === video)
  if (!found) throw new Error(`no line for ${video} on ${day}`)
  return found
}

beforeAll(async () => {
  s = await startTestServices({ LOG_LEVEL: 'error' })
  const put = (day: string, video: string, views: number, extra: { creator?: string; watchMs?: number } = {}) => putViews(s.ch, { day, video, views, ...extra })
  // a small day
  await put('2024-01-01', 'small-1', 5, { creator: 'small', watchMs: 1_500 })
  await put('2024-01-01', 'small-2', 1, { creator: 'small', watchMs: 700 })
  await put('2024-01-01', 'small-3', 0, { creator: 'small', watchMs: 300 })
  // crossing 100,000 and 1,000,000
  await put('2024-01-01', 'cross-100k', 99_990)
  await put('2024-01-02', 'cross-100k', 20)
  await put('2024-01-01', 'cross-1m', 999_999)
  await put('2024-01-02', 'cross-1m', 3)
  // ad tiers count each ad on each video
  await putImpressions(s.ch, { day: '2024-01-01', video: 'ads-1', ad: 'X', impressions: 99_999 })
  await putImpressions(s.ch, { day: '2024-01-02', video: 'ads-1', ad: 'X', impressions: 2 })
  await putImpressions(s.ch, { day: '2024-01-02', video: 'ads-1', ad: 'Y', impressions: 2 })
  await putImpressions(s.ch, { day: '2024-01-02', video: 'ads-2', ad: 'X', impressions: 2 })
  // truncation per line: 3 views at 1.1 = 3.3 won, twice
  await put('2024-01-01', 'trunc-1', 100_000, { creator: 'trunc' })
  await put('2024-01-01', 'trunc-2', 100_000, { creator: 'trunc' })
  await put('2024-01-02', 'trunc-1', 3, { creator: 'trunc' })
  await put('2024-01-02', 'trunc-2', 3, { creator: 'trunc' })
  // volume mode from Jan 8
  await put('2024-01-01', 'vol-1', 99_990)
  await put('2024-01-08', 'vol-1', 20)
  await put('2024-01-01', 'vol-2', 99_990)
  await put('2024-01-08', 'vol-2', 10)
  await putImpressions(s.ch, { day: '2024-01-08', video: 'vol-1', ad: 'Z', impressions: 5 })
  // a rate-card change mid-month
  await put('2024-01-14', 'change', 10)
  await put('2024-01-15', 'change', 10)
  // weeks and a month of one creator
  await put('2024-01-03', 'w-1', 7, { creator: 'weekly' })
  await put('2024-01-07', 'w-1', 11, { creator: 'weekly' })
  await put('2024-01-08', 'w-1', 5, { creator: 'weekly' })
  await put('2024-01-31', 'w-1', 4, { creator: 'weekly' })
  await putImpressions(s.ch, { day: '2024-01-07', video: 'w-2', ad: 'Q', creator: 'weekly', impressions: 3 })
  await putImpressions(s.ch, { day: '2024-01-08', video: 'w-2', ad: 'Q', creator: 'weekly', impressions: 1 })

  const defaults = { tierFloors: [0n, 100_000n, 500_000n, 1_000_000n], adRatesTenths: [100n, 120n, 150n, 200n] }
  await addRateCard(s.ch, { ...defaults, effectiveFrom: '2024-01-08', mode: 'volume', videoRatesTenths: [10n, 11n, 13n, 15n], note: 'volume test' }, null)
  await addRateCard(s.ch, { ...defaults, effectiveFrom: '2024-01-15', mode: 'graduated', videoRatesTenths: [20n, 22n, 26n, 30n], note: 'doubled' }, null)
  await settle(s, { kind: 'days', from: '2024-01-01', to: '2024-01-31', finalize: true, trigger: 'test' }, { now })
})
afterAll(() => s?.stopAll())

describe('golden days from SPEC §7', () => {
  it('prices a small day at 1.0 won per view and keeps the watch-time snapshot', async () => {
    const lines = (await videoLines(s.ch, '2024-01-01')).filter((l) => l.creator_id === 'small')
    expect(lines.map((l) => [l.video_id, l.views, l.watch_ms, l.revenue_tenths, l.revenue_krw, l.status, l.rate_card_version])).toEqual([
      ['small-1', '5', '1500', '50', '5', 'final', 1],
      ['small-2', '1', '700', '10', '1', 'final', 1],
      ['small-3', '0', '300', '0', '0', 'final', 1],
    ])
  })

  it('splits a day crossing 100,000 views: 10 views at 1.0 and 10 at 1.1', async () => {
    expect(await line('2024-01-01', 'cross-100k')).toMatchObject({ views_before: '0', views_after: '99990', revenue_tenths: '999900', revenue_krw: '99990' })
    expect(await line('2024-01-02', 'cross-100k')).toMatchObject({ views: '20', views_before: '99990', views_after: '100010', revenue_tenths: '210', revenue_krw: '21' })
  })

  it('splits a day crossing 1,000,000 views and truncates each line', async () => {
    // 100,000 × 1.0 + 400,000 × 1.1 + 499,999 × 1.3 = 1,189,998.7 won
    expect(await line('2024-01-01', 'cross-1m')).toMatchObject({ revenue_tenths: '11899987', revenue_krw: '1189998' })
    // n = 1,000,000 at 1.3, then 1,000,001 and 1,000,002 at 1.5: 4.3 won
    expect(await line('2024-01-02', 'cross-1m')).toMatchObject({ views_before: '999999', views_after: '1000002', revenue_tenths: '43', revenue_krw: '4' })
  })

  it('counts ad tiers per (video, ad)', async () => {
    const day1 = await adLines(s.ch, '2024-01-01')
    expect(day1.find((l) => l.video_id === 'ads-1')).toMatchObject({ ad_id: 'X', impressions: '99999', revenue_tenths: '9999900', revenue_krw: '999990' })
    const day2 = (await adLines(s.ch, '2024-01-02')).map((l) => [l.video_id, l.ad_id, l.impressions_before, l.impressions_after, l.revenue_tenths, l.revenue_krw])
    expect(day2).toEqual([
      ['ads-1', 'X', '99999', '100001', '220', '22'], // n = 100,000 at 10, 100,001 at 12
      ['ads-1', 'Y', '0', '2', '200', '20'], // another ad on the same video starts at n = 1
      ['ads-2', 'X', '0', '2', '200', '20'], // the same ad on another video starts at n = 1
    ])
  })

  it('truncates each line to whole won and sums the truncated lines', async () => {
    expect(await line('2024-01-02', 'trunc-1')).toMatchObject({ revenue_tenths: '33', revenue_krw: '3' })
    expect(await line('2024-01-02', 'trunc-2')).toMatchObject({ revenue_tenths: '33', revenue_krw: '3' })
    const [day] = await settlementTotals(s.ch, { creatorId: 'trunc', grain: 'day', from: '2024-01-02', to: '2024-01-02' })
    expect(day).toMatchObject({ video_revenue_krw: 6, total_krw: 6 }) // not 6.6 rounded
  })

  it('prices all of a day at the tier of its closing count in volume mode', async () => {
    expect(await line('2024-01-08', 'vol-1')).toMatchObject({ pricing_mode: 'volume', rate_card_version: 2, views_after: '100010', revenue_tenths: '220', revenue_krw: '22' })
    // closing exactly on 100,000 stays in the first tier
    expect(await line('2024-01-08', 'vol-2')).toMatchObject({ views_after: '100000', revenue_tenths: '100', revenue_krw: '10' })
    expect((await adLines(s.ch, '2024-01-08')).find((l) => l.video_id === 'vol-1')).toMatchObject({ ad_id: 'Z', impressions: '5', revenue_tenths: '500', revenue_krw: '50' })
  })

  it('applies a new rate card from its effective day, keeping the card of earlier days', async () => {
    expect(await line('2024-01-14', 'change')).toMatchObject({ rate_card_version: 2, pricing_mode: 'volume', revenue_krw: '10' })
    expect(await line('2024-01-15', 'change')).toMatchObject({ rate_card_version: 3, pricing_mode: 'graduated', views_before: '10', revenue_tenths: '200', revenue_krw: '20' })
    const [month] = await settlementTotals(s.ch, { videoId: 'change', grain: 'month', from: '2024-01-01', to: '2024-01-31' })
    expect(month).toMatchObject({ period: '2024-01-01', views: 20, video_revenue_krw: 30, status: 'final' })
  })

  it('sums days into ISO weeks, a month and a year exactly', async () => {
    const q = { creatorId: 'weekly', from: '2024-01-01', to: '2024-01-31' }
    const weeks = await settlementTotals(s.ch, { ...q, grain: 'week' })
    expect(weeks).toEqual([
      { period: '2024-01-01', views: 18, video_revenue_krw: 18, ad_impressions: 3, ad_revenue_krw: 30, total_krw: 48, status: 'final' },
      { period: '2024-01-08', views: 5, video_revenue_krw: 5, ad_impressions: 1, ad_revenue_krw: 10, total_krw: 15, status: 'final' },
      // w-1 at n = 24..27 under card v3: 4 × 2.0
      { period: '2024-01-29', views: 4, video_revenue_krw: 8, ad_impressions: 0, ad_revenue_krw: 0, total_krw: 8, status: 'final' },
    ])
    const month = { period: '2024-01-01', views: 27, video_revenue_krw: 31, ad_impressions: 4, ad_revenue_krw: 40, total_krw: 71, status: 'final' }
    expect(await settlementTotals(s.ch, { ...q, grain: 'month' })).toEqual([month])
    expect(await settlementTotals(s.ch, { ...q, grain: 'year' })).toEqual([month])
    const days = await settlementTotals(s.ch, { ...q, grain: 'day' })
    expect(days.reduce((sum, d) => sum + d.total_krw, 0)).toBe(71)
  })

  it('splits a week by video and by ad', async () => {
    const q = { creatorId: 'weekly', from: '2024-01-01', to: '2024-01-07', grain: 'week' as const }
    expect(await settlementByVideo(s.ch, q)).toEqual([
      { period: '2024-01-01', video_id: 'w-1', creator_id: 'weekly', views: 18, video_revenue_krw: 18, ad_impressions: 0, ad_revenue_krw: 0, total_krw: 18, status: 'final' },
      { period: '2024-01-01', video_id: 'w-2', creator_id: 'weekly', views: 0, video_revenue_krw: 0, ad_impressions: 3, ad_revenue_krw: 30, total_krw: 30, status: 'final' },
    ])
    expect(await settlementByAd(s.ch, q)).toEqual([{ period: '2024-01-01', video_id: 'w-2', ad_id: 'Q', impressions: 3, ad_revenue_krw: 30, status: 'final' }])
  })

  it('records every run with its totals and keeps one visible run per day', async () => {
    const runs = await s.ch.query({ query: "SELECT count() AS n, countIf(status = 'final') AS f FROM settlement_days WHERE day BETWEEN '2024-01-01' AND '2024-01-31'", format: 'JSONEachRow' })
    expect(await runs.json()).toEqual([{ n: '31', f: '31' }])
  })
})
