import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rows } from '../harness/engines.ts'
import { watchEmbeddedStatements } from '../../lib/clickhouse.ts'
import { startTestServices, type TestServices } from '../harness/services.ts'
import { settle, type SettleRequest } from '../../jobs/settlement/job.ts'
import { acquireSettlementLock } from '../../jobs/settlement/lock.ts'
import { settlementByVideo, settlementTotals, visibleRuns } from '../../jobs/settlement/queries.ts'
import { listRuns, writeRun } from '../../jobs/settlement/runs.ts'
import { publishedVisibleRuns, settlementVersion } from '../../jobs/settlement/version.ts'
import { adEvents, clockAt, lineContents, playEvents, putViews, videoLines } from './fixtures.ts'

/*
 * One timeline in March 2024, Asia/Seoul, 48 h lateness window: the tests run in order
 * and each moves the clock forward. Data goes through raw_events where the time of an
 * event matters (day boundary, late events).
 */

let s: TestServices
let now = clockAt('2024-03-03T01:00:00+09:00')
const run = (req: SettleRequest, opts: Parameters<typeof settle>[2] = {}) => settle(s, req, { now: () => now(), ...opts })
const day = (d: string, extra: { finalize?: boolean; dryRun?: boolean } = {}): SettleRequest => ({ kind: 'days', from: d, to: d, trigger: 'test', ...extra })

async function line(d: string, video: string) {
  return (await videoLines(s.ch, d)).find((l) => l.video_id === video)
}

beforeAll(async () => {
  s = await startTestServices({ LOG_LEVEL: 'error' })
  await playEvents(s.ch, { at: '2024-03-01T12:00:00+09:00', video: 'v1', n: 30 })
  await adEvents(s.ch, { at: '2024-03-01T12:00:00+09:00', video: 'v1', ad: 'A', n: 4 })
  await putViews(s.ch, { day: '2024-03-01', video: 'tier', views: 99_990 })
  // the last and the first instant of 2 and 3 March in Seoul
  await playEvents(s.ch, { at: '2024-03-02T14:59:59.999Z', video: 'edge', n: 2 })
  await playEvents(s.ch, { at: '2024-03-02T15:00:00.000Z', video: 'edge', n: 3 })
})
afterAll(() => s?.stopAll())

describe('settlement runs', () => {
  it('refuses to start after the first day with data, naming that day', async () => {
    await expect(run(day('2024-03-02'))).rejects.toMatchObject({ code: 'OUT_OF_ORDER', message: expect.stringContaining('--from 2024-03-01 --to 2024-03-02') })
  })

  it('settles a provisional day, and a rerun in one statement per row gives identical rows and checksum', async () => {
    const first = await run(day('2024-03-01'))
    expect(first.days).toMatchObject([{ day: '2024-03-01', status: 'provisional', views: 99_990 + 30, ad_impressions: 4, ad_revenue_krw: 40, unchanged: false }])
    const before = await lineContents(s.ch, '2024-03-01')
    const lineStatements: string[] = []
    const unwatch = watchEmbeddedStatements(s.ch, (t) => t.queryId?.includes('settlement-') && lineStatements.push(t.statement))
    const again = await run(day('2024-03-01'), { statementRows: 1 })
    unwatch!()
    // two videos and one (video, ad) pair on the day: a statement each, over its share of the videos
    expect(lineStatements.filter((q) => q.includes('INSERT INTO settlement_video_lines')).length).toBeGreaterThanOrEqual(2)
    expect(lineStatements.filter((q) => q.includes('INSERT INTO settlement_ad_lines')).length).toBeGreaterThanOrEqual(1)
    expect(again.days[0]).toMatchObject({ checksum: first.days[0]!.checksum, unchanged: true })
    expect(again.days[0]!.run_id).toBeGreaterThan(first.days[0]!.run_id!)
    expect(await lineContents(s.ch, '2024-03-01')).toEqual(before)
    expect((await line('2024-03-01', 'v1'))?.run_id).toBe(String(again.days[0]!.run_id))
  })

  it('prints the same summary in a dry run, without writing anything', async () => {
    const runsBefore = (await listRuns(s.ch)).length
    const dry = await run(day('2024-03-01', { dryRun: true }))
    const visible = (await listRuns(s.ch)).find((r) => r.state === 'committed' && r.day === '2024-03-01')
    expect(dry.days[0]).toMatchObject({ dry_run: true, run_id: null, checksum: visible?.checksum, views: visible?.views })
    expect((await listRuns(s.ch)).length).toBe(runsBefore)
  })

  it('refuses a second runner while the first holds the lock', async () => {
    const results = await Promise.allSettled([run(day('2024-03-01')), run(day('2024-03-01'))])
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const refused = results.find((r) => r.status === 'rejected')
    expect(refused?.reason).toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/another settlement run is in progress \(held by .* pid \d+/) })

    const lock = await acquireSettlementLock(s.redis, { ttlMs: 10_000 })
    await expect(run(day('2024-03-01'))).rejects.toMatchObject({ code: 'LOCKED' })
    await lock.release()
    await expect(run(day('2024-03-01'))).resolves.toBeDefined()
  })

  it('leaves the previous result visible when a run dies half-way', async () => {
    const visible = await lineContents(s.ch, '2024-03-01')
    const visibleRun = (await line('2024-03-01', 'v1'))?.run_id
    await playEvents(s.ch, { at: '2024-03-01T20:00:00+09:00', video: 'v1', n: 1 })
    await expect(run(day('2024-03-01'), { afterVideoLines: async () => { throw new Error('killed between video and ad lines') } })).rejects.toThrow('killed')
    expect(await lineContents(s.ch, '2024-03-01')).toEqual(visible)
    expect((await line('2024-03-01', 'v1'))?.run_id).toBe(visibleRun)
    const failed = (await listRuns(s.ch))[0]
    expect(failed).toMatchObject({ day: '2024-03-01', state: 'failed', error: 'killed between video and ad lines' })
    // its half-written lines exist but are not visible
    const stray = await rows(s.ch, 'SELECT count() AS n FROM settlement_video_lines WHERE run_id = {r:UInt64}', { r: failed!.run_id })
    expect(stray).toEqual([{ n: '2' }])
  })

  it('closes the record of a run that was killed outright at the next run', async () => {
    const [latest] = await listRuns(s.ch)
    await writeRun(s.ch, { ...latest!, run_id: latest!.run_id + 1, state: 'running', revision: 1, error: '' })
    await run(day('2024-03-01'))
    const killed = (await listRuns(s.ch)).find((r) => r.run_id === latest!.run_id + 1)
    expect(killed).toMatchObject({ state: 'failed', error: expect.stringContaining('abandoned') })
  })

  it('picks up a late event on rerun and recomputes the later provisional days in order', async () => {
    await putViews(s.ch, { day: '2024-03-02', video: 'tier', views: 20 })
    await run(day('2024-03-02'))
    // 99,990 before: 10 views at 1.0 and 10 at 1.1
    expect(await line('2024-03-02', 'tier')).toMatchObject({ views_before: '99990', revenue_tenths: '210' })
    await playEvents(s.ch, { at: '2024-03-02T23:00:00+09:00', video: 'tier', n: 5 }) // late, inside the window
    await playEvents(s.ch, { at: '2024-03-01T23:59:59+09:00', video: 'tier', n: 5 })
    const rerun = await run(day('2024-03-01'))
    expect(rerun.days.map((d) => [d.day, d.trigger])).toEqual([
      ['2024-03-01', 'test'],
      ['2024-03-02', 'cascade'],
    ])
    expect(await line('2024-03-01', 'tier')).toMatchObject({ views: '99995' })
    // 99,995 before, 25 views: 5 at 1.0 and 20 at 1.1 = 27.0 won
    expect(await line('2024-03-02', 'tier')).toMatchObject({ views: '25', views_before: '99995', views_after: '100020', revenue_tenths: '270', revenue_krw: '27' })
  })

  it('refuses bad, future and out-of-order days with a clear message', async () => {
    await expect(run(day('2024-02-30'))).rejects.toMatchObject({ code: 'BAD_DATE' })
    await expect(run({ kind: 'days', from: '2024-03-03', to: '2024-03-02' })).rejects.toMatchObject({ code: 'BAD_DATE', message: expect.stringContaining('backwards') })
    await expect(run(day('2024-03-03'))).rejects.toMatchObject({ code: 'FUTURE_DAY', message: 'day 2024-03-03 has not ended yet in Asia/Seoul (today is 2024-03-03); the latest day that can be settled is 2024-03-02' })
    await expect(run(day('2024-02-28'))).rejects.toMatchObject({ code: 'OUT_OF_ORDER', message: expect.stringContaining('settlement started on 2024-03-01') })
    now = clockAt('2024-03-10T01:00:00+09:00')
    await expect(run(day('2024-03-09'))).rejects.toMatchObject({ code: 'OUT_OF_ORDER', message: expect.stringContaining('npm run settle -- --from 2024-03-03 --to 2024-03-09') })
    now = clockAt('2024-03-03T01:00:00+09:00')
  })

  it('puts each event in its Asia/Seoul day', async () => {
    now = clockAt('2024-03-04T00:30:00+09:00')
    await run(day('2024-03-03'))
    expect(await line('2024-03-02', 'edge')).toMatchObject({ views: '2', views_before: '0' })
    expect(await line('2024-03-03', 'edge')).toMatchObject({ views: '3', views_before: '2' })
  })

  it('finalizes days past the window, in order, and only those', async () => {
    // at 00:30 on 4 March the window of 1 March has just closed
    await expect(run(day('2024-03-01'))).rejects.toMatchObject({ code: 'PAST_WINDOW', message: expect.stringContaining('--finalize') })
    await expect(run(day('2024-03-02', { finalize: true }))).rejects.toMatchObject({ code: 'OUT_OF_ORDER', message: expect.stringContaining('day 2024-03-01 is not final yet') })
    const due = await run({ kind: 'finalize-due', trigger: 'test' })
    await expect(run(day('2024-03-02', { finalize: true }))).rejects.toMatchObject({ code: 'WITHIN_WINDOW', message: expect.stringContaining('2024-03-04T15:00:00.000Z') })
    // nothing changed since the last provisional run, so nothing later needs recomputing
    expect(due.days.map((d) => [d.day, d.status, d.unchanged])).toEqual([['2024-03-01', 'final', true]])
    const tier = await line('2024-03-01', 'tier')
    expect(tier?.status).toBe('final')
    // folded into the cumulative table; the superseded runs' lines are gone
    expect(await rows(s.ch, "SELECT views_after FROM settlement_video_cumulative FINAL WHERE video_id = 'tier'")).toEqual([{ views_after: '99995' }])
    expect(await rows(s.ch, "SELECT uniqExact(run_id) AS runs FROM settlement_video_lines WHERE day = '2024-03-01'")).toEqual([{ runs: '1' }])
  })

  it('finishes folding a final day that a killed run left unfolded', async () => {
    const run1 = (await line('2024-03-01', 'tier'))!.run_id
    await s.ch.command({ query: 'DELETE FROM settlement_runs WHERE run_id = {r:UInt64} AND revision = 3', query_params: { r: run1 } })
    await s.ch.command({ query: "DELETE FROM settlement_video_cumulative WHERE day = '2024-03-01'" })
    expect((await listRuns(s.ch)).find((r) => r.run_id === Number(run1))?.revision).toBe(2)
    expect(await rows(s.ch, "SELECT count() AS n FROM settlement_video_cumulative WHERE video_id = 'tier'")).toEqual([{ n: '0' }])
    await run(day('2024-03-03'))
    expect(await rows(s.ch, "SELECT views_after FROM settlement_video_cumulative FINAL WHERE video_id = 'tier'")).toEqual([{ views_after: '99995' }])
    expect((await listRuns(s.ch)).find((r) => r.run_id === Number(run1))).toMatchObject({ state: 'committed', status: 'final', revision: 3 })
  })

  it('never changes a final day, whatever arrives or runs later', async () => {
    const finalLines = await lineContents(s.ch, '2024-03-01')
    await playEvents(s.ch, { at: '2024-03-01T22:00:00+09:00', video: 'v1', n: 7 })
    await expect(run(day('2024-03-01', { finalize: true }))).rejects.toMatchObject({ code: 'DAY_FINAL', message: expect.stringContaining('final') })
    await expect(run({ kind: 'days', from: '2024-03-01', to: '2024-03-02', finalize: true })).rejects.toMatchObject({ code: 'DAY_FINAL' })
    now = clockAt('2024-03-06T00:00:00+09:00')
    const due = await run({ kind: 'finalize-due', trigger: 'test' })
    expect(due.days.map((d) => d.day)).toEqual(['2024-03-02', '2024-03-03'])
    expect(await lineContents(s.ch, '2024-03-01')).toEqual(finalLines)
    // 2 March still prices on top of the settled (final) 1 March
    expect(await line('2024-03-02', 'tier')).toMatchObject({ status: 'final', views_before: '99995' })
  })

  it('reports a period provisional while any of its days is', async () => {
    now = clockAt('2024-03-07T01:00:00+09:00')
    await putViews(s.ch, { day: '2024-03-05', video: 'v1', views: 1 })
    const due = await run({ kind: 'due', trigger: 'test' })
    expect(due.days.map((d) => [d.day, d.status])).toEqual([['2024-03-04', 'final'], ['2024-03-05', 'provisional'], ['2024-03-06', 'provisional']])
    const weeks = await settlementTotals(s.ch, { grain: 'week', from: '2024-02-26', to: '2024-03-10' })
    // the days of February before settlement started never change either
    expect(weeks.map((w) => [w.period, w.status])).toEqual([['2024-02-26', 'final'], ['2024-03-04', 'provisional']])
    const days = await settlementTotals(s.ch, { grain: 'day', from: '2024-03-01', to: '2024-03-03' })
    expect(days.map((d) => d.status)).toEqual(['final', 'final', 'final'])
    // The same answers from a snapshot of the visible runs (what the API binds instead of
    // evaluating settlement_days in each statement), days rerun and superseded included.
    const visible = await visibleRuns(s.ch)
    expect(visible.lastFinal).toBe('2024-03-04')
    expect(visible.runs.size).toBe((await rows(s.ch, 'SELECT day FROM settlement_days')).length)
    // The run published the same snapshot with its last bump: readers of the version read it from Redis.
    expect(await publishedVisibleRuns(s.redis, (await settlementVersion(s.redis))!)).toEqual(visible)
    expect(await settlementTotals(s.ch, { grain: 'week', from: '2024-02-26', to: '2024-03-10' }, visible)).toEqual(weeks)
    expect(await settlementTotals(s.ch, { grain: 'day', from: '2024-03-01', to: '2024-03-03' }, visible)).toEqual(days)
    expect(await settlementByVideo(s.ch, { grain: 'day', from: '2024-03-01', to: '2024-03-06' }, visible)).toEqual(await settlementByVideo(s.ch, { grain: 'day', from: '2024-03-01', to: '2024-03-06' }))
  })
})
