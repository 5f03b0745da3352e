import { TupleParam } from '@clickhouse/client'
import { z } from 'zod'
import { SPLIT_SMALL_READS, type ClickHouseClient } from '../../lib/clickhouse.ts'
import { addDays, periodStart, periodsBetween, type Grain } from '../http/dates.ts'
import { activeParts, seenBlocks, type TablePart } from '../../lib/table-parts.ts'
import { ownViewers, type OpenRows, type PartRow, type RowViewers } from './open-rows.ts'
import type { ViewerSets } from './viewer-sets.ts'
import { queryRowBinary, type RowBinary } from './row-binary.ts'

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

export type StatsQuery = {
  videoId: string
  creatorId: string
  grain: Grain
  from: string
  to: string
  /**
   * Periods from `from` on are open: their unique viewers may come from viewer sets kept
   * under `generation`, and their rows from those kept by blocks as of the load version
   * `loads` (see videoStatsMany).
   */
  open?: { from: string; generation: string; loads?: string | null }
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
/** The parts each row of a read was in, keyed by `rowKey`. */
type Listed = Map<string, string[]>
const zeroRow = (period: string): StatsRow => ({ period, views: 0, watch_ms: 0, ad_impressions: 0, unique_viewers: 0, excluded_self_view: 0, excluded_duplicate_viewer: 0, excluded_duplicate_ip: 0 })
const rowKey = (creatorId: string, videoId: string, period: string) => JSON.stringify([creatorId, videoId, period])
/** The columns of a stats row that add up across parts. */
const SUMMED = ['views', 'watch_ms', 'ad_impressions', 'excluded_self_view', 'excluded_duplicate_viewer', 'excluded_duplicate_ip'] as const
const SUMS = SUMMED.map((c) => `sum(${c}) AS ${c}`).join(', ')
/** The same as UInt64 whatever the columns' type, for reads in RowBinary (see row-binary.ts). */
const SUMS_U64 = SUMMED.map((c) => `toUInt64(sum(${c})) AS ${c}`).join(', ')
/** The summed columns of a RowBinary row, in SUMMED's order. */
const readSums = (rb: RowBinary) => Object.fromEntries(SUMMED.map((c) => [c, rb.uint64()])) as Record<(typeof SUMMED)[number], number>

/**
 * What a batch keeps of open periods, from `from` (the first one not closed) on, under
 * the aggregates `generation`: their unique viewers in the process's viewer sets (see
 * viewer-sets.ts) rather than merge their states again, and their rows by the blocks
 * they were read from (see open-rows.ts), fresh as of the load version `loads`.
 */
type OpenViewers = { sets?: ViewerSets; rows?: OpenRows<StatsRow>; generation: string; from: string; loads: string | null }

/**
 * Most unique viewers of a row whose merged state a read of open periods takes along (8
 * bytes each), for the kept row's set (see open-rows.ts). Busier rows
 * get a viewer set (at 10,000 viewers) when read again.
 */
const STATE_MAX_VIEWERS = 20_000

/** Where a read of open periods puts the merged viewer state of each row from `from` on (rows of at most STATE_MAX_VIEWERS). */
type StatesOut = { from: string; into: Map<string, Uint8Array> }

/**
 * The figures of the videos of `qs` per period of `grain` over [from, to], with their
 * unique viewers merged from the states in the engine; with `listed`, the parts each row
 * was in go there, and with `states`, the merged states of its periods.
 */
async function mergedStats(ch: ClickHouseClient, grain: Grain, qs: StatsQuery[], from: string, to: string, listed?: Listed, states?: StatesOut): Promise<Found> {
  const { table, period, filter } = SOURCES[grain]
  const extra = `${listed ? ', groupUniqArray(toString(_part)) AS parts' : ''}${
    states ? ', if(period >= {statesFrom:String} AND unique_viewers <= {stateMax:UInt64}, CAST(merged AS String), \'\') AS state' : ''
  }`
  // With `states`, one merge of the states gives both the count and the state itself; without,
  // the count alone (the merged state kept as a column costs a copy of each set: 82 against
  // 71 ms for the day's 32 most watched videos over the 100M-event day).
  const viewers = states ? 'finalizeAggregation(merged)' : 'uniqExactMerge(unique_viewers)'
  // RowBinary: the states are bytes (see row-binary.ts); every column is cast to the type read.
  const rb = await queryRowBinary(
    ch,
    `${states ? 'WITH uniqExactMergeState(unique_viewers) AS merged' : ''}
     SELECT toString(creator_id), toString(video_id), toString(${period}) AS period, ${SUMS_U64},
            toUInt64(${viewers}) AS unique_viewers${extra}
     FROM ${table}
     WHERE creator_id IN {creators:Array(String)} AND video_id IN {videos:Array(String)} AND ${filter} BETWEEN {from:Date} AND {to:Date}
     GROUP BY creator_id, video_id, period`,
    // creator_id narrows the primary index (period, creator_id, video_id) to the creators' rows.
    {
      creators: [...new Set(qs.map((q) => q.creatorId))],
      videos: [...new Set(qs.map((q) => q.videoId))],
      from,
      to,
      ...(states ? { statesFrom: states.from, stateMax: STATE_MAX_VIEWERS } : {}),
    },
    SPLIT_SMALL_READS,
  )
  const found: Found = new Map()
  while (!rb.done) {
    const [creatorId, videoId, p] = [rb.string(), rb.string(), rb.string()]
    const { views, watch_ms, ad_impressions, ...excluded } = readSums(rb)
    // In statsRow's order, as the JSON answers list them.
    const row: StatsRow = { period: p, views, watch_ms, ad_impressions, unique_viewers: rb.uint64(), ...excluded }
    const key = rowKey(creatorId, videoId, p)
    found.set(key, row)
    if (listed) listed.set(key, rb.strings())
    if (states) {
      const state = rb.bytes()
      if (state.length > 0) states.into.set(key, Uint8Array.from(state))
    }
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
async function openStats(
  ch: ClickHouseClient, grain: Exclude<Grain, 'year'>, qs: StatsQuery[], from: string, to: string,
  sets: ViewerSets, generation: string, before: string[], listed: Listed, viewersOut: Map<string, RowViewers>,
): Promise<Found> {
  const { table, period } = SOURCES[grain]
  const creators = [...new Set(qs.map((q) => q.creatorId))]
  const videos = [...new Set(qs.map((q) => q.videoId))]
  const rs = await ch.query({
    query: `SELECT creator_id, video_id, toString(${period}) AS period, ${SUMS}, groupUniqArray(_part) AS parts
            FROM ${table}
            WHERE creator_id IN {creators:Array(String)} AND video_id IN {videos:Array(String)} AND ${period} BETWEEN {from:Date} AND {to:Date}
            GROUP BY creator_id, video_id, period`,
    query_params: { creators, videos, from, to },
    format: 'JSON',
  })
  const rows = (await rs.json()).data.map((r) => openRow.parse(r))
  const entries = rows.map((r) => sets.entry(generation, `${table}|${rowKey(r.creator_id, r.video_id, r.period)}`))
  const needs: [string, string, string, string][] = []
  rows.forEach((r, i) => {
    for (const part of sets.missing(entries[i]!, r.parts)) needs.push([part, r.creator_id, r.video_id, r.period])
  })
  if (needs.length > 0) {
    const states = await partStates(ch, table, period, needs)
    const byKey = new Map(rows.map((r, i) => [rowKey(r.creator_id, r.video_id, r.period), entries[i]!]))
    for (const s of states) sets.add(byKey.get(rowKey(s.creatorId, s.videoId, s.period))!, s.part, s.state)
    const got = new Set(states.map((s) => JSON.stringify([s.part, s.creatorId, s.videoId, s.period])))
    if (needs.some((n) => !got.has(JSON.stringify(n)))) return mergedStats(ch, grain, qs, from, to, listed)
  }
  // The blocks of parts active before the rows were read where a key has no row count as
  // read for its set: a later merge of them with parts already read adds nothing.
  rows.forEach((r, i) => {
    const seen = seenBlocks(r.parts, before)
    for (const part of before) if (seen.covers(part)) sets.cover(entries[i]!, part)
  })
  const found: Found = new Map()
  rows.forEach((r, i) => {
    const { creator_id, video_id, parts, ...sums } = r
    found.set(rowKey(creator_id, video_id, r.period), { ...sums, unique_viewers: entries[i]!.viewers.size })
    listed.set(rowKey(creator_id, video_id, r.period), parts)
    viewersOut.set(rowKey(creator_id, video_id, r.period), entries[i]!)
  })
  return found
}

/**
 * The rows each of the given parts of a stats table holds, by key (rowKey): what each
 * adds to the key's sums and its unique-viewer state (see open-rows.ts).
 */
async function rowsOfParts(ch: ClickHouseClient, grain: Exclude<Grain, 'year'>, names: string[]): Promise<Map<string, Map<string, PartRow>>> {
  const { table, period } = SOURCES[grain]
  const rb = await queryRowBinary(
    ch,
    `SELECT toString(_part), toString(creator_id), toString(video_id), toString(${period}), ${SUMMED.map((c) => `toUInt64(${c})`).join(', ')}, CAST(unique_viewers AS String)
     FROM ${table} WHERE _part IN {parts:Array(String)}`,
    { parts: names },
  )
  const out = new Map<string, Map<string, PartRow>>()
  while (!rb.done) {
    const [part, creator, video, p] = [rb.string(), rb.string(), rb.string(), rb.string()]
    const sums: Record<string, number> = readSums(rb)
    const rows = out.get(part) ?? new Map<string, PartRow>()
    // A part holds one row a key (a view groups each block, a merge each key): should one hold
    // more, it has more rows than keys here, and lookup leaves it unknown.
    rows.set(rowKey(creator, video, p), { sums, state: Uint8Array.from(rb.bytes()) })
    out.set(part, rows)
  }
  return out
}

/** A kept row advanced by new parts' rows: their sums added, its unique viewers counted from its set. */
export function advanceStatsRow(row: StatsRow, adds: Record<string, number>[], viewers: number): StatsRow {
  const out = { ...row, unique_viewers: viewers }
  for (const add of adds) for (const c of SUMMED) out[c] += add[c] ?? 0
  return out
}

type PartState = { part: string; creatorId: string; videoId: string; period: string; state: Uint8Array }

/** The unique-viewer states of the given (part, creator, video, period) rows, as the bytes of each state. */
async function partStates(ch: ClickHouseClient, table: string, period: string, needs: [string, string, string, string][]): Promise<PartState[]> {
  const rb = await queryRowBinary(
    ch,
    `SELECT toString(_part), toString(creator_id), toString(video_id), toString(${period}), CAST(unique_viewers AS String)
     FROM ${table}
     WHERE _part IN {parts:Array(String)} AND ${period} IN {periods:Array(Date)}
       AND creator_id IN {creators:Array(String)} AND video_id IN {videos:Array(String)}
       AND (_part, creator_id, video_id, toString(${period})) IN {needs:Array(Tuple(String, String, String, String))}`,
    {
      parts: [...new Set(needs.map((n) => n[0]))],
      periods: [...new Set(needs.map((n) => n[3]))],
      creators: [...new Set(needs.map((n) => n[1]))],
      videos: [...new Set(needs.map((n) => n[2]))],
      needs: needs.map((n) => new TupleParam(n)),
    },
  )
  const out: PartState[] = []
  while (!rb.done) {
    const [part, creatorId, videoId, p] = [rb.string(), rb.string(), rb.string(), rb.string()]
    out.push({ part, creatorId, videoId, period: p, state: rb.bytes() })
  }
  return out
}

/** The periods a group of queries of one grain covers: from the start of the earliest period to the last `to`. */
const span = (grain: Grain, group: StatsQuery[]) => ({
  from: group.map((q) => periodStart(grain, q.from)).reduce((a, b) => (a < b ? a : b)),
  to: group.map((q) => q.to).reduce((a, b) => (a > b ? a : b)),
})

/**
 * The answers of several `videoStats` queries of one grain in one query: chDB runs one
 * query at a time, so one query over many videos beats many queued queries (it pays the
 * fixed cost of a query once; what it reads still grows with the videos).
 * Queries for years must share the month of `to`, which cuts their last year. With
 * `open`, the unique viewers of open periods (not of years) come from viewer sets and their
 * rows from those kept by blocks (see openPeriods).
 */
async function statsOfOneGrain(ch: ClickHouseClient, grain: Grain, qs: StatsQuery[], open?: OpenViewers): Promise<StatsRow[][]> {
  const all = span(grain, qs)
  let found: Found
  if (!open || grain === 'year' || open.from > all.to) found = await mergedStats(ch, grain, qs, all.from, all.to)
  else found = await openPeriods(ch, grain, qs, open)
  return qs.map((q) => periodsBetween(grain, q.from, q.to).map((p) => found.get(rowKey(q.creatorId, q.videoId, p)) ?? zeroRow(p)))
}

/** The table a grain's open periods are read from (years are never open: see openPeriods). */
export const openPeriodsTable = (grain: Exclude<Grain, 'year'>): string => SOURCES[grain].table

/**
 * The batch's figures where some periods are open: the rows kept by blocks (see
 * open-rows.ts) for queries of open periods only whose every key is known over the
 * table's active parts; for the rest, closed periods merged in the engine and open ones
 * through the viewer sets (busy keys) or merged too, each open row then kept (or, in a
 * read that did not list the parts, noted).
 */
async function openPeriods(ch: ClickHouseClient, grain: Exclude<Grain, 'year'>, qs: StatsQuery[], open: OpenViewers): Promise<Found> {
  const { table } = SOURCES[grain]
  const openKeys = (q: StatsQuery) => {
    const first = periodStart(grain, q.from)
    return periodsBetween(grain, first > open.from ? first : open.from, q.to).map((p) => rowKey(q.creatorId, q.videoId, p))
  }
  const allOpen = (q: StatsQuery) => periodStart(grain, q.from) >= open.from
  // Read before the rows: blocks of these parts where a key has no row count as read for it.
  // None where system.parts may not be read: then every read is a query, and no block counts as read without a row.
  // Only the open periods' partitions (0062): the ended ones hold no open key, and one part a period would otherwise add up.
  const read = () => activeParts(ch, table, open.from)
  const wanted = (q: StatsQuery) => open.sets !== undefined && openKeys(q).some((k) => open.sets!.wanted(open.generation, `${table}|${k}`))
  const readBefore = (q: StatsQuery) => open.rows !== undefined && openKeys(q).some((k) => open.rows!.readBefore(open.generation, table, k))
  // Listed when the list is at hand, or some key was read before (its row kept or to be kept) or
  // goes through a viewer set; else the keys are only noted (see open-rows.ts): a cold burst's
  // list would be a query before its rows' in chDB.
  const lists = (open.rows?.listed(open.generation, table, open.loads) ?? false) || qs.some((q) => readBefore(q) || wanted(q))
  const parts: TablePart[] = !lists ? [] : open.rows ? await open.rows.parts(open.generation, table, open.loads, read) : await read().catch(() => [])
  const before = parts.map((p) => p.name)
  const found: Found = new Map()
  let pending = qs
  if (open.rows && lists) {
    const known = await open.rows.lookup(open.generation, table, qs.filter(allOpen).flatMap(openKeys), parts, (names) => rowsOfParts(ch, grain, names))
    for (const [k, row] of known) found.set(k, row)
    // A query of open periods only is read from its first period not known on (under live
    // ingest, today's rows of a video whose yesterday is known): the rest come from here.
    pending = qs.flatMap((q) => {
      if (!allOpen(q)) return [q]
      const first = openKeys(q).findIndex((k) => !known.has(k))
      return first === -1 ? [] : first === 0 ? [q] : [{ ...q, from: periodsBetween(grain, periodStart(grain, q.from), q.to)[first]! }]
    })
  }
  if (pending.length === 0) return found

  const listed: Listed = new Map()
  // The unique viewers of open rows as sets, for the rows kept: merged states of quiet rows,
  // viewer sets of busy ones. States are taken along for the last period asked for alone
  // (today, under live ingest: the rows loads add to); the rest of a row's states cost a
  // cold read more than they save (about 1.5x at the tail over the 100M-event day).
  const last = pending.map((q) => periodStart(grain, q.to)).reduce((x, y) => (x < y ? x : y))
  const states = open.rows?.keepsViewers() ? { from: last > open.from ? last : open.from, into: new Map<string, Uint8Array>() } : undefined
  const shared = new Map<string, RowViewers>()
  // Videos with a set worth keeping for an open period go through the sets; the rest are merged in the
  // engine, as are keys only noted so far: their second read keeps their rows as a first read would.
  const kept = (q: StatsQuery) => open.rows !== undefined && openKeys(q).some((k) => open.rows!.kept(open.generation, table, k))
  const viaSets: StatsQuery[] = []
  const merged: StatsQuery[] = []
  for (const q of pending) (wanted(q) && (kept(q) || !readBefore(q)) ? viaSets : merged).push(q)
  if (merged.length > 0) {
    // A key's first read takes no state along: most keys read once are never advanced (each of
    // the states costs the engine a copy of its set and the reader its decoding: 32 against 53
    // ms for a batch of 32 of the day's 100th-130th most watched videos, alone in chDB), nor
    // does a noted key's second read. A key whose kept row the loads since did not advance
    // takes its state along, so that later loads advance it.
    const again = states ? merged.filter(kept) : []
    const first = merged.filter((q) => !again.includes(q))
    const read = async (group: StatsQuery[], withStates?: StatesOut): Promise<Found> => {
      if (group.length === 0) return new Map()
      const m = span(grain, group)
      return mergedStats(ch, grain, group, m.from, m.to, lists ? listed : undefined, withStates)
    }
    for (const rows of await Promise.all([read(first), read(again, states)])) for (const [k, row] of rows) found.set(k, row)
  }
  if (viaSets.length > 0) {
    const { from, to } = span(grain, viaSets)
    const fromSets = await openStats(ch, grain, viaSets, from > open.from ? from : open.from, to, open.sets!, open.generation, before, listed, shared).finally(() =>
      open.sets!.trim(),
    )
    for (const [k, row] of fromSets) found.set(k, row)
    if (from < open.from) for (const [k, row] of await mergedStats(ch, grain, viaSets, from, addDays(open.from, -1))) found.set(k, row)
  }
  for (const q of pending)
    for (const k of openKeys(q)) {
      const row = found.get(k) ?? zeroRow((JSON.parse(k) as string[])[2]!)
      open.sets?.note(open.generation, `${table}|${k}`, row.unique_viewers)
      if (!open.rows) continue
      if (!lists) {
        open.rows.note(open.generation, table, k)
        continue
      }
      const parts = listed.get(k) ?? []
      const viewers = shared.get(k)
      if (viewers) open.rows.record(open.generation, table, k, row, seenBlocks(parts, before), viewers, false)
      else open.rows.record(open.generation, table, k, row, seenBlocks(parts, before), states && ownViewers(states.into.get(k), row.unique_viewers, parts))
    }
  return found
}

/**
 * The answers of many `videoStats` queries, in order, with one query per grain (per
 * month of `to` for years): what a batch of concurrent requests runs. With `sets`, the
 * unique viewers of the periods a query marks `open` come from them; with `rows`, those
 * periods' rows are kept by the blocks they were read from and reused while no part of
 * the table holds new rows of them (see open-rows.ts).
 */
export async function videoStatsMany(ch: ClickHouseClient, qs: StatsQuery[], sets?: ViewerSets, rows?: OpenRows<StatsRow>): Promise<StatsRow[][]> {
  const keeps = sets !== undefined || rows !== undefined
  const groups = new Map<string, number[]>()
  qs.forEach((q, i) => {
    const open = keeps && q.open ? ` ${q.open.generation} ${q.open.from} ${q.open.loads ?? ''}` : ''
    const group = (q.grain === 'year' ? `year ${periodStart('month', q.to)}` : q.grain) + open
    const members = groups.get(group) ?? []
    members.push(i)
    groups.set(group, members)
  })
  const out: StatsRow[][] = new Array(qs.length)
  for (const indexes of groups.values()) {
    const first = qs[indexes[0]!]!
    const open = keeps && first.open ? { sets, rows, generation: first.open.generation, from: first.open.from, loads: first.open.loads ?? null } : undefined
    const answers = await statsOfOneGrain(ch, first.grain, indexes.map((i) => qs[i]!), open)
    indexes.forEach((i, k) => (out[i] = answers[k]!))
  }
  return out
}
