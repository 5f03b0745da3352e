import type { ClickHouseClient } from '../lib/clickhouse.ts'
import type { Logger } from '../lib/log.ts'
import { storedIds } from './events/ingest.ts'
import { parseRow, type RawEventRow } from './events/rows.ts'
import { insertingRows, keepInWal, type InsertRows } from './set-aside.ts'
import type { Settings } from '../lib/config.ts'
import type { Redis } from '../lib/redis.ts'
import { createRules, decisionRecord, newRequestId, type Outcome, type Rules } from './state/decide.ts'
import { createWal, walDir, type Wal, type WalEntry, type WalLoad } from './wal.ts'
import { idleIngestMigrationAppliedAt } from '../migrations/runner.ts'

export type RepairDeps = {
  ch: ClickHouseClient
  rules: Rules
  wal: Wal
  log: Logger
  held: { has(token: string): boolean }
  /** The raw insert, which sets aside lines the engine cannot read (see set-aside.ts). */
  insertRows: InsertRows
}

/**
 * Finishes what the write-ahead log still holds and this process is not working on
 * (`held`): at start-up, everything a crash or a stop left behind.
 *
 * - A load manifest: its insert may have landed in part (raw_events without some views)
 *   or not at all. The same entries are inserted again as the same block under the same
 *   dedup token: raw_events skips a block it has and each view adds only what it lacks.
 *   If an entry is already gone, the load had succeeded and was being cleaned up.
 * - An entry in no manifest: its flush was logged but never handed to the loader (the
 *   process died first, or marking its requests in Redis failed, so their clients got
 *   no 200 and may have retried). Retries may have taken some events over, so only the
 *   events its requests still own are stored, with the entry's own token.
 *
 * @returns the number of loads and entries finished
 */
export async function repairWal(deps: RepairDeps): Promise<number> {
  let done = 0
  const inLoads = new Set<string>()
  let rebuiltAt: Promise<number | undefined> | undefined
  for (const load of deps.wal.loads()) {
    if (deps.held.has(load.token)) {
      for (const t of load.entries) inLoads.add(t)
      continue
    }
    await repairLoad(deps, load, await (rebuiltAt ??= idleIngestMigrationAppliedAt(deps.ch)))
    done++
  }
  for (const token of deps.wal.tokens()) {
    if (deps.held.has(token) || inLoads.has(token)) continue
    const entry = deps.wal.read(token)
    if (!entry) continue // loaded and removed meanwhile, or unreadable
    await repairEntry(deps, entry)
    done++
  }
  return done
}

/**
 * `rebuiltAt`: when tables that loads feed were last rebuilt (a migration that required
 * idle ingest). A rebuilt table has forgotten the dedup tokens of the blocks it holds,
 * so a load that began before the rebuild and reached raw_events is not inserted again:
 * its rows are counted already, unless the crash cut it between raw_events and the views,
 * which is reported (an edge that stops cleanly leaves no load; `npm run migrate` in
 * server mode asks for every edge to be stopped first).
 */
/**
 * Finishes this host's write-ahead log while no edge of it runs (before a migration
 * rewrites the tables it feeds); throws if anything is left, so that the migration waits
 * for a start that can finish it.
 */
export async function finishWal(deps: { settings: Settings; ch: ClickHouseClient; redis: Redis; log: Logger }): Promise<void> {
  const { settings, ch, redis, log } = deps
  const wal = createWal(walDir(settings))
  wal.removeTorn()
  const finished = await repairWal({ ch, rules: createRules(redis, settings), wal, log, held: { has: () => false }, insertRows: insertingRows(ch, keepInWal(wal, log)) })
  if (finished > 0) log.warn('finished the write-ahead log before a migration that rewrites aggregate tables', { flushes: finished })
  if (wal.tokens().length > 0 || wal.loads().length > 0) throw new Error(`the write-ahead log in ${wal.dir} could not be finished; the migration waits for it`)
}

async function repairLoad(deps: RepairDeps, load: WalLoad, rebuiltAt: number | undefined): Promise<void> {
  const { ch, wal, log } = deps
  const entries = load.entries.map((t) => wal.read(t))
  let reinsert = entries.every((e) => e !== undefined)
  if (reinsert && rebuiltAt !== undefined && (load.at ?? 0) < rebuiltAt) {
    const landed = await landedRows(ch, entries as WalEntry[])
    if (landed > 0) {
      reinsert = false
      log.warn('a load interrupted before aggregate tables were rebuilt had reached raw_events: not inserted again; check its aggregates', {
        token: load.token,
        entry_tokens: load.entries,
        raw_rows: landed,
      })
    }
  }
  // The way the loader went (see WalLoad): the same block again, from the same files or the same text.
  if (reinsert) await deps.insertRows(entries.map((e) => e!.body).join(''), load.token, load.files ? entries.map((e) => e!.file) : undefined)
  await wal.remove(...load.entries)
  await wal.removeLoad(load.token)
  log.info('finished an interrupted load', { token: load.token, entries: load.entries.length, reinserted: reinsert })
}

/** Rows of these entries in raw_events (each row carries its entry's token). */
async function landedRows(ch: ClickHouseClient, entries: WalEntry[]): Promise<number> {
  const rs = await ch.query({
    query: 'SELECT count() AS n FROM raw_events WHERE video_id IN {videos:Array(String)} AND insert_token IN {tokens:Array(String)}',
    query_params: { videos: [...new Set(entries.flatMap((e) => e.requests.map((r) => r.videoId)))], tokens: entries.map((e) => e.token) },
    format: 'JSONEachRow',
  })
  return Number(((await rs.json()) as { n: string }[])[0]?.n ?? 0)
}

async function repairEntry(deps: RepairDeps, entry: WalEntry): Promise<void> {
  const { ch, rules, wal, log } = deps
  const landed = await landedRows(ch, [entry])
  let lines = entry.lines
  const marks = [...entry.requests]
  if (landed === 0) {
    const replayId = newRequestId()
    lines = []
    let offset = 0
    for (const req of entry.requests) {
      // Items that failed validation have no id of their own to claim: they are this flush's alone.
      const invalid: string[] = []
      const decided: { line: string; row: RawEventRow }[] = []
      for (const line of entry.lines.slice(offset, offset + req.rows)) {
        const row = parseRow(line)
        if (row.reason === 'invalid_event') invalid.push(line)
        else decided.push({ line, row })
      }
      offset += req.rows
      const owned = await rules.claim(req.videoId, req.sessionId, replayId, decided.map(({ row: r }) => ({ id: r.event_id, record: decisionRecord(req.requestId, { outcome: r.outcome as Outcome, reason: r.reason, credited: Number(r.credited_watch_ms) }) })), req.exp)
      // Records forgotten with the session's expired token: no retry can come any more, so
      // what ClickHouse lacks of them (a takeover before they expired stored the rest) is stored.
      const forgotten = decided.filter((_, i) => owned[i] === 'forgotten')
      const stored = await storedIds(ch, req.videoId, req.sessionId, forgotten.map((d) => d.row.event_id))
      lines.push(...invalid, ...decided.filter((d, i) => owned[i] === 'mine' || (owned[i] === 'forgotten' && !stored.has(d.row.event_id.toLowerCase()))).map((d) => d.line))
      marks.push({ ...req, requestId: replayId })
    }
  }
  // The entry's own lines (or those of them still owned), under the entry's own token.
  if (lines.length > 0) await deps.insertRows(lines.map((l) => `${l}\n`), entry.token)
  await rules.markRequests(marks, true)
  await wal.remove(entry.token)
  log.info('repaired an unfinished flush', { token: entry.token, rows: lines.length, of: entry.lines.length, raw_already_had: landed })
}
