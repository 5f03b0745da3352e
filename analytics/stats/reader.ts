import { Counter, Gauge, type Registry } from 'prom-client'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { keyPart, type AggregateCache, type CacheOutcome } from '../cache/aggregate-cache.ts'
import { closedPeriods, lastClosedDay, type ClosingRules } from '../cache/closed-days.ts'
import type { Arrivals } from '../http/arrivals.ts'
import { batcher } from '../http/batch.ts'
import { addDays, periodEnd, periodStart, periodsBetween } from '../http/dates.ts'
import { singleFlight } from '../http/single-flight.ts'
import { localRows } from '../cache/local-rows.ts'
import { activeParts } from '../../lib/table-parts.ts'
import { openAnswers } from '../cache/open-answers.ts'
import { advanceStatsRow, openPeriodsTable, statsRow, videoStatsMany, type StatsQuery, type StatsRow } from './queries.ts'
import { openRows, type OpenRows } from './open-rows.ts'
import { viewerSets, type ViewerSets } from './viewer-sets.ts'

export type StatsAnswer = { rows: StatsRow[]; outcome: CacheOutcome; stored: boolean }
/** The rows of closed periods a read keeps (by period) found in this process or Redis; null when Redis could not answer. */
type ClosedFound = Map<string, StatsRow> | null
/** A read's periods: which of them are closed and kept (see readStats). */
type Plan = { lastClosed: string; periods: readonly string[]; keep: Set<string> }
/** What a request's prepare() started (see createStatsReader). */
export type Prepared = {
  versions: ReturnType<AggregateCache['versions']>
  /** The read's cached rows of closed periods, read while its video is looked up (for that video and range only). */
  closed?: { videoId: string; grain: StatsQuery['grain']; from: string; to: string; plan: Plan; found: Promise<ClosedFound> }
}

/**
 * Answers stats queries: the rows of closed periods from the cache (a Redis hash per
 * video and grain, one field per period, so what it holds is bounded by the data, not
 * by how many ranges are asked for; the rows this process read or stored are also kept
 * in its memory, see localRows), the rest from ClickHouse. Queries of concurrent
 * requests run as one batched query, and identical ones share it. What is queried (the
 * open periods) is reused in this process only until the next load into ClickHouse (see
 * openAnswers), so it is as fresh as a query. `concurrency`: batches run at once (1 for
 * embedded chDB, which runs one query at a time).
 *
 * @example
 * const read = createStatsReader({ ch, cache, rules: settings, now: () => new Date(), closedTtlSeconds: 86_400, openMaxAgeMs: 10_000 })
 * const { rows, outcome } = await read({ videoId, creatorId, grain: 'day', from: '2026-03-01', to: '2026-03-31' })
 */
export function createStatsReader(deps: {
  ch: ClickHouseClient
  cache: AggregateCache
  rules: ClosingRules
  now: () => Date
  closedTtlSeconds: number
  /** How long an answer over open periods may be reused while no load has landed (0: always queried). */
  openMaxAgeMs?: number
  /** Most rows of closed periods kept in this process besides Redis (see localRows). */
  localMaxRows?: number
  /**
   * Most unique viewers of open periods this process keeps in sets (16 to 32 bytes each),
   * so that a read of a busy video takes only the states loaded since the last (see
   * viewer-sets.ts). 0: every read merges all the states of its open periods in the engine.
   */
  openViewerSetsMax?: number
  /** Least unique viewers a key had when last read for it to get a set (default 10,000; 0: every key). */
  openViewerSetsMin?: number
  /**
   * Most rows of open periods (a video's day, week or month) this process keeps by the
   * blocks of the table they were read from, so that a read of a video no load has
   * touched since queries nothing (see open-rows.ts). 0: every such read is a query.
   */
  openRowsMax?: number
  /**
   * Most unique viewers the kept rows hold as sets of their own (16 to 32 bytes each), so
   * that a load's new rows of a video advance its kept row instead of a query (see
   * open-rows.ts; busy videos use their viewer set). 0: a row a load touched is read again.
   */
  openRowsViewersMax?: number
  /** Where to report what the viewer sets hold (gauges cs_stats_viewer_sets_values and _bytes). */
  registry?: Registry
  concurrency?: number
  /** How long a read that finds no batch running waits for others to join its query (see batcher's gatherMs; 0: none). */
  batchGatherMs?: number
  /**
   * The reads on their way (see arrivals.ts; each read hands its ticket back as it joins a
   * batch or finds it needs none): a batch waits for those under way when its first read
   * came, after batchGatherMs, until at most batchGatherMaxMs after that read.
   */
  onTheWay?: Arrivals
  batchGatherMaxMs?: number
}) {
  const { cache } = deps
  const sets = (deps.openViewerSetsMax ?? 0) > 0 ? viewerSets({ maxViewers: deps.openViewerSetsMax!, minViewers: deps.openViewerSetsMin }) : undefined
  const openMaxAgeMs = deps.openMaxAgeMs ?? 0
  // The list of active parts is read again on each load mark, and at least as often as an
  // answer over open periods may be reused when a load went unmarked.
  const kept =
    (deps.openRowsMax ?? 0) > 0
      ? openRows<StatsRow>({
          maxKeys: deps.openRowsMax!,
          advance: advanceStatsRow,
          maxViewers: deps.openRowsViewersMax ?? 0,
          partsMaxAgeMs: Math.min(1_000, openMaxAgeMs),
          now: () => deps.now().getTime(),
        })
      : undefined
  if (deps.registry) report(deps.registry, sets, kept, deps.onTheWay)
  const batched = batcher((qs: StatsQuery[]) => videoStatsMany(deps.ch, qs, sets, kept), {
    concurrency: deps.concurrency ?? 1,
    gatherMs: deps.batchGatherMs ?? 0,
    onTheWay: deps.onTheWay,
    gatherMaxMs: deps.batchGatherMaxMs,
  })
  const sharedQuery = singleFlight<StatsRow[]>()
  const shared = (q: StatsQuery) => sharedQuery(JSON.stringify(q), () => batched(q))
  const fill = singleFlight<{ value: StatsRow[]; reused: boolean; stored: boolean }>()
  const open = openAnswers<StatsRow[]>({ maxAgeMs: openMaxAgeMs, now: () => deps.now().getTime() })
  const local = localRows<StatsRow>({ maxRows: deps.localMaxRows ?? 200_000, ttlMs: deps.closedTtlSeconds * 1000, now: () => deps.now().getTime() })

  /** The start of the first period of `grain` with an open day (the open rows' partitions from there on). */
  const openFrom = (grain: StatsQuery['grain'], lastClosed: string) => periodStart(grain, addDays(lastClosed, 1))
  /** The periods of `asked`, and those of them kept in the cache: closed (up to `lastClosed`), and not a year that `to` cuts. */
  const planOf = (asked: Pick<StatsQuery, 'grain' | 'from' | 'to'>, lastClosed = lastClosedDay(deps.rules, deps.now())): Plan => {
    const periods = periodsBetween(asked.grain, asked.from, asked.to)
    const closed = closedPeriods(asked.grain, periods, lastClosed)
    // The last year may be cut by `to` (a year counts months up to the one holding `to`): then it is not kept.
    const cut = asked.grain === 'year' && periodEnd('year', periods.at(-1)!) > asked.to
    return { lastClosed, periods, keep: new Set(periods.filter((_, i) => closed[i] && !(cut && i === periods.length - 1))) }
  }
  /**
   * A video's cached rows of the periods `keep` (one hash a video and grain under the
   * generation's prefix `ns`): those this process holds, the rest from Redis (then held here too).
   * Keyed by the video alone, whose creator never changes, so that the read can start before the
   * video is looked up (see prepare); nothing read is answered before the caller is found to own it.
   */
  const closedKey = (ns: string, videoId: string, grain: StatsQuery['grain']) => `${ns}stats:${keyPart(videoId)}:${grain}`
  const closedRows = async (ns: string, videoId: string, grain: StatsQuery['grain'], keep: Set<string>): Promise<ClosedFound> => {
    const key = closedKey(ns, videoId, grain)
    const found = new Map<string, StatsRow>()
    const here = local.get(key)
    const wanted = [...keep].filter((p) => {
      const row = here?.get(p)
      if (row) found.set(p, row)
      return !row
    })
    if (wanted.length === 0) return found
    const cached = await cache.getFields(key, wanted)
    if (cached === null) return null
    const fromRedis: [string, StatsRow][] = []
    wanted.forEach((p, i) => {
      const row = parseRow(cached[i] ?? null)
      if (row?.period !== p) return
      found.set(p, row)
      fromRedis.push([p, row])
    })
    // Nothing is held for a key Redis has nothing of (a video never read, or none at all: this read may come before the lookup).
    if (fromRedis.length > 0) local.add(key, fromRedis)
    return found
  }
  /**
   * For a request about to read `grain` once it knows its video (a lookup in the engine): reads
   * the versions now, for the read to use (pass the result to it: read after the request began,
   * as the read needs, and one round trip instead of two), and with kept rows starts reading
   * the table's active parts, so that chDB, which runs one query at a time, runs that query
   * while the lookup gathers instead of between the lookup and the read (a cold burst of 32:
   * about 4 ms), once a key of the table was read under the aggregates generation. With
   * `ahead` (the video and range the request asks for), the video's cached rows of closed
   * periods are read meanwhile too, Redis beside chDB's lookup (in a trace of a cold burst of
   * 32, those reads had taken 1.2-2.4 ms after the lookup).
   */
  const prepare = (grain: StatsQuery['grain'], ahead?: { videoId: string; from: string; to: string }): Prepared => {
    const versions = cache.versions()
    const lastClosed = lastClosedDay(deps.rules, deps.now())
    let closed: Prepared['closed']
    if (ahead && deps.closedTtlSeconds > 0) {
      const plan = planOf({ grain, ...ahead }, lastClosed)
      if (plan.keep.size > 0) closed = { ...ahead, grain, plan, found: versions.then((v) => (v ? closedRows(v.ns, ahead.videoId, grain, plan.keep) : null)) }
    }
    if (kept && grain !== 'year') {
      const from = openFrom(grain, lastClosed)
      const table = openPeriodsTable(grain)
      // The same list and key as openPeriods reads (a load since makes it read again); the list is the table's, nobody's data.
      // Not before any key of the table was read under the generation: that read lists nothing (see open-rows.ts).
      void versions.then((v) => {
        if (v && kept.holds(v.ns, table)) void kept.parts(v.ns, table, v.data, () => activeParts(deps.ch, table, from))
      })
    }
    return { versions, closed }
  }

  /** `joined`: hands back the read's ticket of `onTheWay`, called once the read has joined a batch (or the query it shares) or needs none. */
  async function readStats(asked: StatsQuery, joined: () => void = () => {}, prepared?: Prepared): Promise<StatsAnswer> {
    const query = (q: StatsQuery) => {
      joined()
      return shared(q)
    }
    const ahead = prepared?.closed
    const readAhead = ahead && ahead.videoId === asked.videoId && ahead.grain === asked.grain && ahead.from === asked.from && ahead.to === asked.to ? ahead : undefined
    const { lastClosed, periods, keep } = readAhead?.plan ?? planOf(asked)
    const useClosed = deps.closedTtlSeconds > 0 && keep.size > 0
    const bypass = !useClosed && openMaxAgeMs === 0
    const versions = bypass && !sets && !kept ? null : await (prepared?.versions ?? cache.versions())
    // Viewer sets and rows kept by blocks live under the aggregates generation, which a rewrite of the tables bumps.
    const q: StatsQuery =
      versions && (sets || kept) && asked.grain !== 'year'
        ? { ...asked, open: { from: openFrom(asked.grain, lastClosed), generation: versions.ns, loads: versions.data } }
        : asked
    if (bypass) return { rows: await query(q), outcome: 'bypass', stored: false }
    if (versions === null) return { rows: await query(q), outcome: 'unavailable', stored: false }
    /** The rows from period `i` on: reused while no load has landed when an open period is among them. */
    const fresh = async (i: number) => {
      const part = { ...q, from: periods[i]! }
      if (periods.slice(i).every((p) => keep.has(p))) return { value: await query(part), reused: false, stored: false }
      return open(versions.data, JSON.stringify(part), () => query(part))
    }
    if (!useClosed) {
      const { value, reused, stored } = await fresh(0)
      return { rows: value, outcome: reused ? 'hit' : stored ? 'miss' : 'bypass', stored }
    }
    const key = closedKey(versions.ns, q.videoId, q.grain)
    const found = await (readAhead?.found ?? closedRows(versions.ns, q.videoId, q.grain, keep))
    if (found === null) return { rows: await query(q), outcome: 'unavailable', stored: false }
    const served = periods.findIndex((p) => !found.has(p))
    if (served === -1) return { rows: periods.map((p) => found.get(p)!), outcome: 'hit', stored: false }

    // One query from the first period the cache lacks to the end (usually the open days);
    // concurrent requests for the same rows under the same versions share it and its one write.
    joined()
    const { value: queried, reused, stored } = await fill(JSON.stringify([versions.ns, versions.data, q, served]), async () => {
      const got = await fresh(served)
      if (got.reused) return got
      const queriedClosed = got.value.filter((r) => keep.has(r.period) && !found.has(r.period))
      // Not waited for (see setFields): this process keeps the rows in memory at once, and other
      // processes that read before the write lands query them once more.
      cache.setFields(key, Object.fromEntries(queriedClosed.map((r) => [r.period, JSON.stringify(r)])), deps.closedTtlSeconds)
      local.add(key, queriedClosed.map((r) => [r.period, r] as const))
      return { ...got, stored: queriedClosed.length > 0 || got.stored }
    })
    const rows = [...periods.slice(0, served).map((p) => found.get(p)!), ...queried]
    if (reused) return { rows, outcome: 'hit', stored: false }
    return { rows, outcome: served > 0 ? 'partial' : 'miss', stored }
  }
  return Object.assign(readStats, { prepare })
}

type Reported = { sets: Set<ViewerSets>; rows: Set<OpenRows<StatsRow>>; underWay: Set<Arrivals> }
const reported = new WeakMap<Registry, Reported>()

/**
 * Metrics of what the viewer sets and the kept rows of every stats reader on `registry`
 * hold (one reader per process but in tests), how many keys of open periods were
 * answered from the kept rows or not, and the stats requests under way (0 at rest: a
 * ticket never handed back would show there, and every batch would then wait its longest).
 */
function report(registry: Registry, sets: ViewerSets | undefined, rows: OpenRows<StatsRow> | undefined, underWay: Arrivals | undefined): void {
  let all = reported.get(registry)
  if (!all) {
    const readers: Reported = { sets: new Set(), rows: new Set(), underWay: new Set() }
    const ofSets = (pick: (h: ReturnType<ViewerSets['held']>) => number) => [...readers.sets].reduce((n, r) => n + pick(r.held()), 0)
    const ofRows = (pick: (h: ReturnType<OpenRows<StatsRow>['held']>) => number) => [...readers.rows].reduce((n, r) => n + pick(r.held()), 0)
    new Gauge({ name: 'cs_stats_viewer_sets_values', help: 'Unique viewers of open periods this process keeps in sets', registers: [registry], collect() { this.set(ofSets((h) => h.viewers)) } })
    new Gauge({ name: 'cs_stats_viewer_sets_bytes', help: 'Memory of the tables of those sets', registers: [registry], collect() { this.set(ofSets((h) => h.bytes)) } })
    new Gauge({ name: 'cs_stats_open_rows', help: 'Rows of open periods this process keeps by the blocks they were read from', registers: [registry], collect() { this.set(ofRows((h) => h.keys)) } })
    new Gauge({ name: 'cs_stats_open_rows_part_lists', help: 'Parts whose rows this process keeps (small parts of loads and their merges)', registers: [registry], collect() { this.set(ofRows((h) => h.partLists)) } })
    new Gauge({ name: 'cs_stats_open_rows_viewers', help: 'Unique viewers the kept rows of open periods hold in sets of their own', registers: [registry], collect() { this.set(ofRows((h) => h.viewers)) } })
    new Gauge({
      name: 'cs_stats_requests_under_way',
      help: 'Stats requests between their start and their joining a batch (or needing none)',
      registers: [registry],
      collect() {
        this.set([...readers.underWay].reduce((n, t) => n + t.out, 0))
      },
    })
    const counted = { hits: 0, advanced: 0, misses: 0 }
    new Counter({
      name: 'cs_stats_open_rows_answers_total',
      help: 'Keys of open periods looked up in the kept rows, by whether they were answered from them as kept (hit), advanced by new parts (advanced), or read from ClickHouse (miss)',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        const now = { hits: ofRows((h) => h.hits), advanced: ofRows((h) => h.advanced), misses: ofRows((h) => h.misses) }
        this.inc({ outcome: 'hit' }, now.hits - counted.hits)
        this.inc({ outcome: 'advanced' }, now.advanced - counted.advanced)
        this.inc({ outcome: 'miss' }, now.misses - counted.misses)
        Object.assign(counted, now)
      },
    })
    reported.set(registry, (all = readers))
  }
  if (sets) all.sets.add(sets)
  if (rows) all.rows.add(rows)
  if (underWay) all.underWay.add(underWay)
}

function parseRow(text: string | null): StatsRow | undefined {
  if (text === null) return undefined
  try {
    const parsed = statsRow.safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}
