import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { watchEmbeddedStatements } from '../../lib/clickhouse.ts'
import { startTestServices, type TestServices } from '../harness/services.ts'
import { settle } from '../../jobs/settlement/job.ts'
import { settlementByVideo, visibleRuns } from '../../jobs/settlement/queries.ts'
import { adLines, clockAt, putImpressions, putViews, videoLines } from './fixtures.ts'

/*
 * The line statements' shares follow every key their GROUP BY takes in, the lifetime counts'
 * as well as the day's (SETTLEMENT_STATEMENT_ROWS bounds each statement's memory), or only the
 * day's when it has few against the lifetime counts (those then read for its keys alone), and a
 * day without rows writes no line statement. April 2024, Asia/Seoul, the days provisional.
 *
 *   1 April  six videos with views, three (video, ad) pairs with impressions
 *   2 April  one video, one pair (both seen on 1 April)
 *   3 April  nothing
 */

let s: TestServices

/** Settles one day, an hour after its end, with `statementRows`; returns the outcome and the line statements it ran, by kind. */
async function settleDay(day: string, statementRows: number) {
  const statements: string[] = []
  const unwatch = watchEmbeddedStatements(s.ch, (t) => t.queryId?.includes('settlement-') && statements.push(t.statement))
  try {
    const now = clockAt(new Date(Date.parse(`${day}T01:00:00+09:00`) + 86_400_000).toISOString())
    const out = await settle(s, { kind: 'days', from: day, to: day, trigger: 'test' }, { now, statementRows })
    return {
      day: out.days[0]!,
      statements: statements.filter((q) => q.includes('INSERT INTO settlement_')),
      videoStatements: statements.filter((q) => q.includes('INSERT INTO settlement_video_lines')).length,
      adStatements: statements.filter((q) => q.includes('INSERT INTO settlement_ad_lines')).length,
    }
  } finally {
    unwatch!()
  }
}

beforeAll(async () => {
  s = await startTestServices({ LOG_LEVEL: 'error' })
  for (let i = 1; i <= 6; i++) await putViews(s.ch, { day: '2024-04-01', video: `v${i}`, views: 100 * i })
  for (const [video, ad] of [['v1', 'A'], ['v2', 'A'], ['v3', 'B']] as const) await putImpressions(s.ch, { day: '2024-04-01', video, ad, impressions: 10 })
  await putViews(s.ch, { day: '2024-04-02', video: 'v1', views: 7 })
  await putImpressions(s.ch, { day: '2024-04-02', video: 'v1', ad: 'A', impressions: 3 })
})
afterAll(() => s?.stopAll())

describe('settlement line statements', () => {
  it('split a day by the keys of its day and of the lifetime counts, and price each video from its history', async () => {
    const first = await settleDay('2024-04-01', 2)
    expect(first.day).toMatchObject({ video_lines: 6, ad_lines: 3 })
    expect(first.videoStatements).toBe(3)
    expect(first.adStatements).toBe(2)

    // One video and one pair on the day, six videos and three pairs in the lines before it: the
    // day's keys a small share of all, the statements take in only the day's of the lifetime
    // counts, so the shares are counted from the day's keys (from all of them: three and two).
    const second = await settleDay('2024-04-02', 2)
    expect(second.videoStatements).toBe(1)
    expect(second.adStatements).toBe(1)
    expect(second.statements.every((q) => q.includes('IN (SELECT video_id'))).toBe(true)
    expect(first.statements.some((q) => q.includes('IN (SELECT video_id'))).toBe(false)
    expect(second.day).toMatchObject({ video_lines: 1, views: 7, ad_lines: 1, ad_impressions: 3 })
    expect((await videoLines(s.ch, '2024-04-02')).map((l) => [l.video_id, l.views_before, l.views_after])).toEqual([['v1', '100', '107']])
    expect((await adLines(s.ch, '2024-04-02')).map((l) => [l.video_id, l.ad_id, l.impressions_before, l.impressions_after])).toEqual([['v1', 'A', '10', '13']])
  })

  it('sum a dry run share by share, to the totals and checksum of the run it would write', async () => {
    const now = clockAt('2024-04-03T01:00:00+09:00')
    // The same shares as the run's statements: 1 April three of the video lines and two of the ad
    // lines; 2 April one each, over the lifetime counts of its keys alone.
    for (const [day, videoShares, adShares] of [['2024-04-01', 3, 2], ['2024-04-02', 1, 1]] as const) {
      const committed = await settle(s, { kind: 'days', from: day, to: day, trigger: 'test' }, { now, statementRows: 1_000 })
      const statements: string[] = []
      const unwatch = watchEmbeddedStatements(s.ch, (t) => void statements.push(t.statement))
      const dry = await settle(s, { kind: 'days', from: day, to: day, trigger: 'test', dryRun: true }, { now, statementRows: 2 })
      unwatch!()
      const { run_id: _r, duration_ms: _d, dry_run: _y, unchanged: _u, ...totals } = committed.days[0]!
      expect(dry.days[0]).toMatchObject({ ...totals, dry_run: true, run_id: null, unchanged: true })
      const shares = statements.filter((q) => q.includes('SELECT count() AS lines'))
      expect(shares.filter((q) => q.includes('views_before')).length).toBe(videoShares)
      expect(shares.filter((q) => q.includes('impressions_before')).length).toBe(adShares)
      expect(shares.every((q) => q.includes('IN (SELECT video_id') === (day === '2024-04-02'))).toBe(true)
    }
  })

  it('list a day a page at a time in the lines\' order, with or without a snapshot of the visible runs', async () => {
    const q = { grain: 'day' as const, from: '2024-04-01', to: '2024-04-02' }
    const whole = await settlementByVideo(s.ch, q)
    expect(whole.map((r) => [r.period, r.video_id, r.views, r.ad_impressions, r.status])).toEqual([
      ...[1, 2, 3, 4, 5, 6].map((i) => ['2024-04-01', `v${i}`, 100 * i, i <= 3 ? 10 : 0, 'provisional']),
      ['2024-04-02', 'v1', 7, 3, 'provisional'],
    ])
    for (const visible of [undefined, await visibleRuns(s.ch)]) {
      const rows: typeof whole = []
      let after: string[] | undefined
      for (let pages = 0; pages < 10; pages++) {
        // Three rows and the one that tells a next page follows, as the routes ask.
        const page = await settlementByVideo(s.ch, { ...q, limit: 3, after }, visible)
        rows.push(...page.slice(0, 3))
        if (page.length <= 3) break
        after = [page[2]!.period, page[2]!.creator_id, page[2]!.video_id]
      }
      expect(rows).toEqual(whole)
    }
  })

  it('write no line statement for a day without rows, and commit it with no lines', async () => {
    const third = await settleDay('2024-04-03', 2)
    expect(third.videoStatements).toBe(0)
    expect(third.adStatements).toBe(0)
    expect(third.day).toMatchObject({ status: 'provisional', video_lines: 0, ad_lines: 0, views: 0, total_krw: 0 })
    expect(third.day.run_id).toBeGreaterThan(0)
    expect(await videoLines(s.ch, '2024-04-03')).toEqual([])
  })
})
