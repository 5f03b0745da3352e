import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { apiInstant } from '../../lib/instants.ts'
import type { Day } from './calendar.ts'

export type DayStatus = 'provisional' | 'final'
export type RunState = 'running' | 'committed' | 'failed'
export type RunTrigger = 'cli' | 'scheduler' | 'http' | 'cascade' | 'test'

/** What a run wrote: counts, sums of truncated lines (won) and the checksum of its lines. */
export type RunTotals = {
  video_lines: number
  ad_lines: number
  views: number
  video_revenue_krw: number
  ad_impressions: number
  ad_revenue_krw: number
  checksum: string
}

/** One settlement run as recorded in `settlement_runs`. */
export type RunRecord = RunTotals & {
  run_id: number
  day: Day
  state: RunState
  status: DayStatus
  /** 1 started, 2 committed or failed, 3 committed and folded into the cumulative tables. */
  revision: number
  trigger: RunTrigger
  rate_card_version: number
  pricing_mode: string
  started_at: string
  finished_at: string | null
  error: string
}

export const emptyTotals: RunTotals = { video_lines: 0, ad_lines: 0, views: 0, video_revenue_krw: 0, ad_impressions: 0, ad_revenue_krw: 0, checksum: '' }

const n = z.coerce.number()
const runSchema = z.object({
  run_id: n,
  day: z.string(),
  state: z.enum(['running', 'committed', 'failed']),
  status: z.enum(['provisional', 'final']),
  revision: n,
  trigger: z.enum(['cli', 'scheduler', 'http', 'cascade', 'test']),
  rate_card_version: n,
  pricing_mode: z.string(),
  // As the API answers them (written with toISOString, read back as ClickHouse's text: lib/instants.ts).
  started_at: z.string().transform(apiInstant),
  finished_at: z.string().nullable().transform((t) => (t === null ? null : apiInstant(t))),
  video_lines: n,
  ad_lines: n,
  views: n,
  video_revenue_krw: n,
  ad_impressions: n,
  ad_revenue_krw: n,
  checksum: z.string(),
  error: z.string(),
})

// Dates and times come out of JSONEachRow as strings already ('2024-01-02', '2024-01-02 00:30:00.000'; the times made RFC 3339 above).
const RUN_COLUMNS = `run_id, day, state, status, revision, trigger, rate_card_version, pricing_mode, started_at, finished_at,
  video_lines, ad_lines, views, video_revenue_krw, ad_impressions, ad_revenue_krw, checksum, error`

/** Writes a new revision of a run's record (the highest revision wins). */
export async function writeRun(ch: ClickHouseClient, run: RunRecord): Promise<void> {
  await ch.insert({ table: 'settlement_runs', values: [run], format: 'JSONEachRow' })
}

/** A fresh run id: one more than any recorded. Called under the settlement lock. */
export async function nextRunId(ch: ClickHouseClient): Promise<number> {
  const rs = await ch.query({ query: 'SELECT max(run_id) AS m FROM settlement_runs', format: 'JSONEachRow' })
  const [row] = z.array(z.object({ m: n })).parse(await rs.json())
  return (row?.m ?? 0) + 1
}

/** The visible run of a day: its latest committed run; `started_ms`: when it started (ms since the epoch, by the runner's clock). */
export type SettledDay = { day: Day; run_id: number; status: DayStatus; folded: boolean; checksum: string; started_ms: number }

/** Every settled day with its visible run, in day order. One row per day, so small. */
export async function settledDays(ch: ClickHouseClient): Promise<SettledDay[]> {
  const rs = await ch.query({
    query: `SELECT day, run_id, status, revision, checksum, toUnixTimestamp64Milli(started_at) AS started_ms
      FROM settlement_runs FINAL
      WHERE state = 'committed'
      ORDER BY day ASC, run_id DESC
      LIMIT 1 BY day`,
    format: 'JSONEachRow',
  })
  const schema = z.object({ day: z.string(), run_id: n, status: z.enum(['provisional', 'final']), revision: n, checksum: z.string(), started_ms: n })
  return (await rs.json()).map((r) => {
    const row = schema.parse(r)
    return { day: row.day, run_id: row.run_id, status: row.status, folded: row.revision >= 3, checksum: row.checksum, started_ms: row.started_ms }
  })
}

/** One run's latest record. */
export async function getRun(ch: ClickHouseClient, runId: number): Promise<RunRecord | undefined> {
  const rs = await ch.query({ query: `SELECT ${RUN_COLUMNS} FROM settlement_runs FINAL WHERE run_id = {run_id:UInt64}`, query_params: { run_id: runId }, format: 'JSONEachRow' })
  const [row] = await rs.json()
  return row === undefined ? undefined : runSchema.parse(row)
}

/** Runs still marked running. Called under the lock, when none can be alive. */
export async function unfinishedRuns(ch: ClickHouseClient): Promise<RunRecord[]> {
  const rs = await ch.query({ query: `SELECT ${RUN_COLUMNS} FROM settlement_runs FINAL WHERE state = 'running' ORDER BY run_id`, format: 'JSONEachRow' })
  return (await rs.json()).map((r) => runSchema.parse(r))
}

/**
 * Recorded runs, newest first, for operators and the admin API.
 *
 * @example
 * await listRuns(ch, { from: '2024-01-01', to: '2024-01-31', limit: 100 })
 */
export async function listRuns(ch: ClickHouseClient, opts: { from?: Day; to?: Day; limit?: number } = {}): Promise<RunRecord[]> {
  const rs = await ch.query({
    query: `SELECT ${RUN_COLUMNS} FROM settlement_runs FINAL
      WHERE day >= {from:Date} AND day <= {to:Date}
      ORDER BY run_id DESC LIMIT {limit:UInt32}`,
    query_params: { from: opts.from ?? '1970-01-01', to: opts.to ?? '2148-12-31', limit: opts.limit ?? 100 },
    format: 'JSONEachRow',
  })
  return (await rs.json()).map((r) => runSchema.parse(r))
}
