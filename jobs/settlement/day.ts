import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { BACKGROUND_QUERY_PREFIX } from '../../lib/engine-turns.ts'
import type { Day } from './calendar.ts'
import { rateCardFor, type RateCard } from './rate-cards.ts'
import { nextRunId, writeRun, type DayStatus, type RunRecord, type RunTotals, type RunTrigger, type SettledDay } from './runs.ts'
import {
  AD_LINE_COLUMNS,
  VIDEO_LINE_COLUMNS,
  adLinesSelect,
  checksumSql,
  dropSupersededAdLines,
  dropSupersededVideoLines,
  foldAdCumulative,
  foldVideoCumulative,
  lineKeysSql,
  lineSettings,
  lineTotalsSql,
  storedAdLines,
  storedVideoLines,
  summarySql,
  videoLinesSelect,
} from './sql.ts'

/** What settling one day produced (or, for a dry run, would produce). */
export type DayOutcome = RunTotals & {
  day: Day
  status: DayStatus
  /** Null for a dry run, which writes nothing. */
  run_id: number | null
  dry_run: boolean
  trigger: RunTrigger
  rate_card_version: number
  pricing_mode: string
  /** video_revenue_krw + ad_revenue_krw */
  total_krw: number
  /** Same checksum as the day's previously visible run: the rerun changed nothing. */
  unchanged: boolean
  duration_ms: number
}

export type DayTask = { day: Day; status: DayStatus; trigger: RunTrigger }

export type DayContext = {
  ch: ClickHouseClient
  /** Visible runs of every settled day, in day order; updated as days commit. */
  settled: SettledDay[]
  now: () => Date
  /** Right before a commit: throws if the lock was lost. */
  assertHeld: () => Promise<void>
  /** Test hook between writing video lines and ad lines (throw to simulate a crash). */
  afterVideoLines?: (day: Day) => Promise<void>
  /**
   * Keys of one kind (the day's and the lifetime counts') one statement's GROUP BY takes in at
   * most (SETTLEMENT_STATEMENT_ROWS): a day is written in as many statements as they need, each
   * over a share of the videos.
   */
  statementRows: number
}

const summaryRow = z.object({
  video_lines: z.coerce.number(),
  views: z.coerce.number(),
  video_revenue_krw: z.coerce.number(),
  ad_lines: z.coerce.number(),
  ad_impressions: z.coerce.number(),
  ad_revenue_krw: z.coerce.number(),
  checksum: z.string(),
})

function lineParams(ctx: DayContext, task: DayTask, card: RateCard, runId: number, computedAt: Date) {
  const folded = ctx.settled.filter((s) => s.folded && s.day < task.day).at(-1)?.day ?? '1970-01-01'
  return {
    day: task.day,
    run_id: runId,
    status: task.status,
    computed_at: computedAt.toISOString().replace('T', ' ').replace('Z', ''),
    rate_card_version: card.version,
    pricing_mode: card.mode,
    tier_floors: card.tierFloors,
    video_rates: card.videoRatesTenths,
    ad_rates: card.adRatesTenths,
    folded_through: folded,
    visible_runs: ctx.settled.filter((s) => s.day > folded && s.day < task.day).map((s) => s.run_id),
  }
}

/**
 * Writes a run's lines of one kind in statements over shares of the videos, as many as the
 * keys its GROUP BY takes in need at `statementRows` each (lineKeysSql: the day's videos and
 * the lifetime counts' own, counted with `uniq`: before the engine has merged the day, its
 * aggregates hold each video in several parts, and `count()` gave 10.8M rows for 4.5M videos),
 * and none for a day without rows. Embedded chDB runs one statement at a time, and a read sent
 * meanwhile waits for it (5.3–8.3 s for the video lines of a 100M-event day in one
 * statement); each share takes its turn as a background statement, after the reads under way
 * (engine-turns.ts). Both embedded and against a server, it bounds the GROUP BY's memory. Each
 * share scans the sources once, so shares cost the job time: see SETTLEMENT_STATEMENT_ROWS.
 */
async function insertLines(ctx: DayContext, kind: keyof typeof lineKeysSql, into: string, select: LineSelect, params: Record<string, unknown>): Promise<void> {
  const { parts, dayOnly } = await lineParts(ctx, kind, params)
  for (let part = 0; part < parts; part++) {
    await ctx.ch.command({
      query: `INSERT INTO ${into} ${select(dayOnly)}`,
      query_params: { ...params, parts, part },
      query_id: `${BACKGROUND_QUERY_PREFIX}settlement-${randomUUID()}`,
      clickhouse_settings: lineSettings,
    })
  }
}

/** A kind's line SELECT, its lifetime sources read whole or only for the day's keys (see lineParts). */
type LineSelect = (dayOnly: boolean) => string

/**
 * The day's keys at most this share of all the keys the lifetime sources hold: the statements
 * read those sources for the day's keys alone (an IN over the day's, in each share). bench:settle
 * over 5M videos of history (7 December): days of 530k, 1.64M and 3.01M videos with events
 * settled in 1.6–1.9 s against 3.7–4.7, 4.53 against 5.20 and 9.22 against 10.05. The 100M-event
 * day (4.46M videos, 90 %) keeps reading them whole: an IN over the whole day's videos took it
 * from 9–10 to 22–24 s (thirty-sixth session).
 */
const DAY_ONLY_SHARE = 0.5

/**
 * How many statements (shares of the videos) one kind of the day's lines takes (see insertLines),
 * and whether they read the lifetime sources only for the day's keys: when those are a small
 * share of all (DAY_ONLY_SHARE), the statements are as many as the day's keys need.
 */
async function lineParts(ctx: DayContext, kind: keyof typeof lineKeysSql, params: Record<string, unknown>): Promise<{ parts: number; dayOnly: boolean }> {
  const rs = await ctx.ch.query({
    query: lineKeysSql[kind],
    query_params: { day: params.day, folded_through: params.folded_through, visible_runs: params.visible_runs },
    format: 'JSONEachRow',
  })
  const [row] = await rs.json()
  const { keys, day_keys, day_rows } = z.object({ keys: z.coerce.number(), day_keys: z.coerce.number(), day_rows: z.coerce.number() }).parse(row)
  // A line is a key the day has rows of: none, no statement.
  if (day_rows === 0) return { parts: 0, dayOnly: false }
  const dayOnly = day_keys <= keys * DAY_ONLY_SHARE
  return { parts: Math.max(1, Math.ceil((dayOnly ? day_keys : keys) / ctx.statementRows)), dayOnly }
}

const lineTotalsRow = z.object({ lines: z.coerce.number(), units: z.coerce.number(), krw: z.coerce.number(), hash: z.string() })
const U64 = 2n ** 64n

/**
 * A dry run's totals: the line SELECTs summed share by share, as the run would write them
 * (in one statement the GROUP BY took in every video of the day and of the lifetime counts:
 * 2.9 GiB for a day without events after the 100M-event day with 5M videos of history), and
 * the checksum made from the sums as summarySql makes it from stored lines.
 */
async function dryRunTotals(ctx: DayContext, selects: Record<keyof typeof lineKeysSql, LineSelect>, params: Record<string, unknown>): Promise<RunTotals> {
  const sums = { video: { lines: 0, units: 0, krw: 0, hash: 0n }, ad: { lines: 0, units: 0, krw: 0, hash: 0n } }
  for (const kind of ['video', 'ad'] as const) {
    const { parts, dayOnly } = await lineParts(ctx, kind, params)
    for (let part = 0; part < parts; part++) {
      const rs = await ctx.ch.query({ query: lineTotalsSql(kind, selects[kind](dayOnly)), query_params: { ...params, parts, part }, format: 'JSONEachRow', clickhouse_settings: lineSettings })
      const [row] = await rs.json()
      const t = lineTotalsRow.parse(row)
      const sum = sums[kind]
      sum.lines += t.lines
      sum.units += t.units
      sum.krw += t.krw
      sum.hash = (sum.hash + BigInt(t.hash)) % U64
    }
  }
  const rs = await ctx.ch.query({
    query: checksumSql,
    query_params: { video_lines: sums.video.lines, video_hash: sums.video.hash.toString(), ad_lines: sums.ad.lines, ad_hash: sums.ad.hash.toString() },
    format: 'JSONEachRow',
  })
  const [row] = await rs.json()
  const { checksum } = z.object({ checksum: z.string() }).parse(row)
  return {
    video_lines: sums.video.lines,
    views: sums.video.units,
    video_revenue_krw: sums.video.krw,
    ad_lines: sums.ad.lines,
    ad_impressions: sums.ad.units,
    ad_revenue_krw: sums.ad.krw,
    checksum,
  }
}

async function summary(ch: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<RunTotals> {
  const rs = await ch.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: lineSettings })
  const [row] = await rs.json()
  return summaryRow.parse(row)
}

/**
 * Prices one day inside ClickHouse and, unless `dryRun`, writes its lines as a new run
 * that becomes visible only when its committed record is written. Callers hold the
 * lock and have checked the day may be settled now.
 */
export async function settleOneDay(ctx: DayContext, task: DayTask, dryRun: boolean): Promise<DayOutcome> {
  const t0 = Date.now()
  const { ch } = ctx
  const card = await rateCardFor(ch, task.day)
  const previous = ctx.settled.find((s) => s.day === task.day)
  const outcome = (runId: number | null, totals: RunTotals): DayOutcome => ({
    day: task.day,
    status: task.status,
    run_id: runId,
    dry_run: dryRun,
    trigger: task.trigger,
    rate_card_version: card.version,
    pricing_mode: card.mode,
    video_lines: totals.video_lines,
    ad_lines: totals.ad_lines,
    views: totals.views,
    video_revenue_krw: totals.video_revenue_krw,
    ad_impressions: totals.ad_impressions,
    ad_revenue_krw: totals.ad_revenue_krw,
    checksum: totals.checksum,
    total_krw: totals.video_revenue_krw + totals.ad_revenue_krw,
    unchanged: previous?.checksum === totals.checksum,
    duration_ms: Date.now() - t0,
  })

  if (dryRun) {
    const params = lineParams(ctx, task, card, 0, ctx.now())
    return outcome(null, await dryRunTotals(ctx, { video: (only) => videoLinesSelect(card.mode, card.tierFloors.length, only), ad: (only) => adLinesSelect(card.mode, card.tierFloors.length, only) }, params))
  }

  const runId = await nextRunId(ch)
  const startedAt = ctx.now()
  const params = lineParams(ctx, task, card, runId, startedAt)
  const record: RunRecord = {
    run_id: runId,
    day: task.day,
    state: 'running',
    status: task.status,
    revision: 1,
    trigger: task.trigger,
    rate_card_version: card.version,
    pricing_mode: card.mode,
    started_at: startedAt.toISOString(),
    finished_at: null,
    video_lines: 0,
    ad_lines: 0,
    views: 0,
    video_revenue_krw: 0,
    ad_impressions: 0,
    ad_revenue_krw: 0,
    checksum: '',
    error: '',
  }
  await writeRun(ch, record)
  let committed: RunRecord
  try {
    await insertLines(ctx, 'video', `settlement_video_lines (${VIDEO_LINE_COLUMNS})`, (only) => videoLinesSelect(card.mode, card.tierFloors.length, only), params)
    await ctx.afterVideoLines?.(task.day)
    await insertLines(ctx, 'ad', `settlement_ad_lines (${AD_LINE_COLUMNS})`, (only) => adLinesSelect(card.mode, card.tierFloors.length, only), params)
    const totals = await summary(ch, summarySql(storedVideoLines, storedAdLines), { day: task.day, run_id: runId })
    await ctx.assertHeld()
    committed = { ...record, ...totals, state: 'committed', revision: 2, finished_at: ctx.now().toISOString() }
    await writeRun(ch, committed)
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err)
    await writeRun(ch, { ...record, state: 'failed', revision: 2, finished_at: ctx.now().toISOString(), error }).catch(() => {})
    throw err
  }
  const entry: SettledDay = { day: task.day, run_id: runId, status: task.status, folded: false, checksum: committed.checksum, started_ms: startedAt.getTime() }
  const at = ctx.settled.findIndex((s) => s.day >= task.day)
  if (at === -1) ctx.settled.push(entry)
  else ctx.settled.splice(at, ctx.settled[at]!.day === task.day ? 1 : 0, entry)
  if (task.status === 'final') await foldFinalRun(ch, committed, ctx.settled)
  return outcome(runId, committed)
}

/**
 * Folds a committed final run into the cumulative tables, marks it folded, then drops
 * the day's superseded lines. Safe to repeat: folded rows are copies of final lines.
 */
export async function foldFinalRun(ch: ClickHouseClient, run: RunRecord, settled: SettledDay[]): Promise<void> {
  const params = { day: run.day, run_id: run.run_id }
  await ch.command({ query: foldVideoCumulative, query_params: params })
  await ch.command({ query: foldAdCumulative, query_params: params })
  await writeRun(ch, { ...run, revision: 3 })
  const entry = settled.find((s) => s.day === run.day)
  if (entry) entry.folded = true
  await ch.command({ query: dropSupersededVideoLines, query_params: params })
  await ch.command({ query: dropSupersededAdLines, query_params: params })
}
