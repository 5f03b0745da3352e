import { TupleParam } from '@clickhouse/client'
import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { addDays, periodStart, periodsBetween, type Grain } from '../http/dates.ts'
import { activePartNames, partBlocks } from '../../lib/table-parts.ts'
import { readVarUInt, type ViewerSets } from './viewer-sets.ts'

/**
 * Where each grain is read from: the aggregate table and its period column. A year
 * is the sum of its months (unique viewers: the month states merged). Identifiers
 * only, from this closed list; every value is a bound parameter.
 */
const SOURCES: Record<Grain, { table: string; period: string; filter: string }> = {
  day: { table: 'video_stats_per_day', period: 'day', filter: 'day' },
  week: { table: 'video_stats_per_week', period: 'week', filter: 'week' },
  month: { table: 'video_stats_per_month', period: 'month', filter: 'month' },
  year: { table: 'video_stats_per_month', period: 'toStartOfYear(month)', filter: 'month' },
}

export const statsRow = z.object({
  period: z.string(),
  views: z.coerce.number(),
  watch_ms: z.coerce.number(),
  ad_impressions: z.coerce.number(),
  unique_viewers: z.coerce.number(),
  excluded_self_view: z.coerce.number(),
  excluded_duplicate_viewer: z.coerce.number(),
  excluded_duplicate_ip: z.coerce.number(),
})
export type StatsRow = z.infer<typeof statsRow>
export const statsColumns = Object.keys(statsRow.shape) as (keyof StatsRow)[]

const videoStatsRow = statsRow.extend({ creator_id: z.string(), video_id: z.string() })

export type StatsQuery = {
  videoId: string
  creatorId: string
  grain: Grain
  from: string
  to: string
  /** Periods from `from` on are open: their unique viewers may come from viewer sets kept under `generation` (see videoStatsMany). */
  open?: { from: string; generation: string }
}

/**
 * One video's figures per period over [from, to], every period present (zeros where
 * nothing happened). Periods are whole: the week holding `from` counts all its days.
 * A year counts its months up to the one holding `to`.
 */
export async function videoStats(ch: ClickHouseClient, q: StatsQuery): Promise<StatsRow[]> {
  const [rows] = await videoStatsMany(ch, [q])
  return rows!
}

/** The figures of one video and period, keyed by `rowKey`. */
type Found = Map<string, StatsRow>
const rowKey = (creatorId: string, videoId: string, period: string) => JSON.stringify([creatorId, videoId, period])
const SUMS = `sum(views) AS views, sum(watch_ms) AS watch_ms, sum(ad_impressions) AS ad_impressions,
                   sum(excluded_self_view) AS excluded_self_view,
                   sum(excluded_duplicate_viewer) AS excluded_duplicate_viewer,
                   sum(excluded_duplicate_ip) AS excluded_duplicate_ip`

/**
 * Where a batch takes the unique viewers of open periods from the process's viewer
 * sets (see viewer-sets.ts) rather than merge their states again: periods from `from`
 * (the first one not closed) on, kept under the aggregates `generation`.
 */
type OpenViewers = { sets: ViewerSets; generation: string; from: string }

/**
 * The figures of the videos of `qs` per period of `grain` over [from, to], with their
 * unique viewers merged from the states in the engine.
 */
async function mergedStats(ch: ClickHouseClient, grain: Grain, qs: StatsQuery[], from: string, to: string): Promise<Found> {
  const { table, period, filter } = SOURCES[grain]
  const rs = await ch.query({
    query: `SELECT creator_id, video_id, toString(${period}) AS period, ${SUMS},
                   uniqExactMerge(unique_viewers) AS unique_viewers
            FROM ${table}
            WHERE creator_id IN {creators:Array(String)} AND video_id IN {videos:Array(String)} AND ${filter} BETWEEN {from:Date} AND {to:Date}
            GROUP BY creator_id, video_id, period`,
    // creator_id narrows the primary index (period, creator_id, video_id) to the creators' rows.
    query_params: { creators: [...new Set(qs.map((q) => q.creatorId))], videos: [...new Set(qs.map((q) => q.videoId))], from, to },
    format: 'JSONEachRow',
  })
  const found: Found = new Map()
  for (const r of await rs.json()) {
    const { creator_id, video_id, ...row } = videoStatsRow.parse(r)
    found.set(rowKey(creator_id, video_id, row.period), row)
  }
  return found
}

const openRow = statsRow.omit({ unique_viewers: true }).extend({ creator_id: z.string(), video_id: z.string(), parts: z.array(z.string()) })

/**
 * The figures of the videos of `qs` per open period of `grain` over [from, to] (not
 * years), their unique viewers from the viewer sets: the sums and the parts holding
 * each row in one query that reads no state, then the states of only the parts a set
 * has not read yet. Should a part be merged away between the two (its state then
 * lives in a part this read did not list), the batch's open periods are merged in the
 * engine instead.
 */
async function openStats(ch: ClickHouseClient, grain: Exclude<Grain, 'year'>, qs: StatsQuery[], from: string, to: string, open: OpenViewers): Promise<Found> {
  const { table, period } = SOURCES[grain]
  const creators = [...new Set(qs.map((q) => q.creatorId))]
  const videos = [...new Set(qs.map((q) => q.videoId))]
  // None where system.parts may not be read: then no block counts as seen without a state.
  const before = await open.sets.activeParts(table, () => activePartNames(ch, table).catch(() => []))
  const rs = await ch.query({
    query: `SELECT creator_id, video_id, toString(${period}) AS period, ${SUMS}, groupUniqArray(_part) AS parts
            FROM ${table}
            WHERE creator_id IN {creators:Array(String)} AND video_id IN {videos:Array(String)} AND ${period} BETWEEN {from:Date} AND {to:Date}
            GROUP BY creator_id, video_id, period`,
    query_params: { creators, videos, from, to },
    format: 'JSONEachRow',
  })
  const rows = (await rs.json()).map((r) => openRow.parse(r))
  const sets = rows.map((r) => open.sets.entry(open.generation, `${table}|${rowKey(r.creator_id, r.video_id, r.period)}`))
  const needs: [string, string, string, string][] = []
  rows.forEach((r, i) => {
    for (const part of open.sets.missing(sets[i]!, r.parts)) needs.push([part, r.creator_id, r.video_id, r.period])
  })
  if (needs.length > 0) {
    const states = await partStates(ch, table, period, needs)
    const byKey = new Map(rows.map((r, i) => [rowKey(r.creator_id, r.video_id, r.period), sets[i]!]))
    for (const s of states) open.sets.add(byKey.get(rowKey(s.creatorId, s.videoId, s.period))!, s.part, s.state)
    const got = new Set(states.map((s) => JSON.stringify([s.part, s.creatorId, s.videoId, s.period])))
    if (needs.some((n) => !got.has(JSON.stringify(n)))) return mergedStats(ch, grain, qs, from, to)
  }
  // A part active before the rows were read holds blocks that read saw (in it, or in a part
  // it was merged into); where none of a row's parts overlaps it, the row's key has no
  // row in its blocks, so a later merge of it with parts already read adds nothing.
  const active = before.map((p) => [p, partBlocks(p)] as const)
  rows.forEach((r, i) => {
    const listed = r.parts.map(partBlocks)
    for (const [part, b] of active)
      if (b && !listed.some((l) => l === null || (l.partition === b.partition && l.min <= b.max && b.min <= l.max))) open.sets.cover(sets[i]!, part)
  })
  const found: Found = new Map()
  rows.forEach((r, i) => {
    const { creator_id, video_id, parts: _parts, ...sums } = r
    found.set(rowKey(creator_id, video_id, r.period), { ...sums, unique_viewers: sets[i]!.viewers.size })
  })
  return found
}

type PartState = { part: string; creatorId: string; videoId: string; period: string; state: Uint8Array }

/** The unique-viewer states of the given (part, creator, video, period) rows, as the bytes of each state. */
async function partStates(ch: ClickHouseClient, table: string, period: string, needs: [string, string, string, string][]): Promise<PartState[]> {
  const res = await ch.exec({
    query: `SELECT _part, creator_id, video_id, toString(${period}), CAST(unique_viewers AS String)
            FROM ${table}
            WHERE _part IN {parts:Array(String)} AND ${period} IN {periods:Array(Date)}
              AND creator_id IN {creators:Array(String)} AND video_id IN {videos:Array(String)}
              AND (_part, creator_id, video_id, toString(${period})) IN {needs:Array(Tuple(String, String, String, String))}
            FORMAT RowBinary`,
    query_params: {
      parts: [...new Set(needs.map((n) => n[0]))],
      periods: [...new Set(needs.map((n) => n[3]))],
      creators: [...new Set(needs.map((n) => n[1]))],
      videos: [...new Set(needs.map((n) => n[2]))],
      needs: needs.map((n) => new TupleParam(n)),
    },
  })
  const chunks: Uint8Array[] = []
  for await (const chunk of res.stream as AsyncIterable<Uint8Array>) chunks.push(chunk)
  const buf = Buffer.concat(chunks)
  const text = new TextDecoder()
  const out: PartState[] = []
  let at = 0
  const field = () => {
    const [n, start] = readVarUInt(buf, at)
    if (start + n > buf.length) throw new RangeError('truncated RowBinary string')
    at = start + n
    return buf.subarray(start, start + n)
  }
  while (at < buf.length) {
    const [part, creatorId, videoId, p] = [field(), field(), field(), field()].map((b) => text.decode(b)) as [string, string, string, string]
    out.push({ part, creatorId, videoId, period: p, state: field() })
  }
  return out
}

/**
 * The answers of several `videoStats` queries of one grain in one query: chDB runs one
 * query at a time, so one query over many videos beats many queued queries (it pays the
 * fixed cost of a query once; what it reads still grows with the videos).
 * Queries for years must share the month of `to`, which cuts their last year. With
 * `open`, the unique viewers of open periods (not of years) come from viewer sets.
 */
async function statsOfOneGrain(ch: ClickHouseClient, grain: Grain, qs: StatsQuery[], open?: OpenViewers): Promise<StatsRow[][]> {
  const span = (group: StatsQuery[]) => ({
    from: group.map((q) => periodStart(grain, q.from)).reduce((a, b) => (a < b ? a : b)),
    to: group.map((q) => q.to).reduce((a, b) => (a > b ? a : b)),
  })
  const all = span(qs)
  let found: Found
  if (!open || grain === 'year' || open.from > all.to) found = await mergedStats(ch, grain, qs, all.from, all.to)
  else {
    // Videos with a set worth keeping for an open period go through the sets; the rest are merged in the engine.
    const { table } = SOURCES[grain]
    const openKeys = (q: StatsQuery) => {
      const first = periodStart(grain, q.from)
      return periodsBetween(grain, first > open.from ? first : open.from, q.to).map((p) => `${table}|${rowKey(q.creatorId, q.videoId, p)}`)
    }
    const viaSets: StatsQuery[] = []
    const merged: StatsQuery[] = []
    for (const q of qs) (openKeys(q).some((k) => open.sets.wanted(open.generation, k)) ? viaSets : merged).push(q)
    const m = merged.length > 0 ? span(merged) : null
    found = m ? await mergedStats(ch, grain, merged, m.from, m.to) : new Map()
    if (viaSets.length > 0) {
      const { from, to } = span(viaSets)
      const fromSets = await openStats(ch, grain, viaSets, from > open.from ? from : open.from, to, open).finally(() => open.sets.trim())
      for (const [k, row] of fromSets) found.set(k, row)
      if (from < open.from) for (const [k, row] of await mergedStats(ch, grain, viaSets, from, addDays(open.from, -1))) found.set(k, row)
    }
    for (const [k, row] of found) if (row.period >= open.from) open.sets.note(open.generation, `${table}|${k}`, row.unique_viewers)
  }
  return qs.map((q) =>
    periodsBetween(grain, q.from, q.to).map(
      (p) =>
        found.get(rowKey(q.creatorId, q.videoId, p)) ?? { period: p, views: 0, watch_ms: 0, ad_impressions: 0, unique_viewers: 0, excluded_self_view: 0, excluded_duplicate_viewer: 0, excluded_duplicate_ip: 0 },
    ),
  )
}

/**
 * The answers of many `videoStats` queries, in order, with one query per grain (per
 * month of `to` for years): what a batch of concurrent requests runs. With `sets`, the
 * unique viewers of the periods a query marks `open` come from them.
 */
export async function videoStatsMany(ch: ClickHouseClient, qs: StatsQuery[], sets?: ViewerSets): Promise<StatsRow[][]> {
  const groups = new Map<string, number[]>()
  qs.forEach((q, i) => {
    const open = sets && q.open ? ` ${q.open.generation} ${q.open.from}` : ''
    const group = (q.grain === 'year' ? `year ${periodStart('month', q.to)}` : q.grain) + open
    const members = groups.get(group) ?? []
    members.push(i)
    groups.set(group, members)
  })
  const out: StatsRow[][] = new Array(qs.length)
  for (const indexes of groups.values()) {
    const first = qs[indexes[0]!]!
    const open = sets && first.open ? { sets, ...first.open } : undefined
    const answers = await statsOfOneGrain(ch, first.grain, indexes.map((i) => qs[i]!), open)
    indexes.forEach((i, k) => (out[i] = answers[k]!))
  }
  return out
}
