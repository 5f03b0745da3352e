import type { ClickHouseClient } from '../lib/clickhouse.ts'
import type { Logger } from '../lib/log.ts'
import { insertRawEvents, parseRow, type RawEventRow } from './events/rows.ts'
import { newRequestId, type Rules } from './state/decide.ts'
import type { Wal, WalEntry, WalLoad } from './wal.ts'

export type RepairDeps = { ch: ClickHouseClient; rules: Rules; wal: Wal; log: Logger; held: { has(token: string): boolean } }

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
  for (const load of deps.wal.loads()) {
    if (deps.held.has(load.token)) {
      for (const t of load.entries) inLoads.add(t)
      continue
    }
    await repairLoad(deps, load)
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

async function repairLoad(deps: RepairDeps, load: WalLoad): Promise<void> {
  const { ch, wal, log } = deps
  const entries = load.entries.map((t) => wal.read(t))
  const complete = entries.every((e) => e !== undefined)
  if (complete) await insertRawEvents(ch, entries.map((e) => e!.body).join(''), load.token)
  await Promise.all(load.entries.map((t) => wal.remove(t)))
  await wal.removeLoad(load.token)
  log.info('finished an interrupted load', { token: load.token, entries: load.entries.length, reinserted: complete })
}

async function repairEntry(deps: RepairDeps, entry: WalEntry): Promise<void> {
  const { ch, rules, wal, log } = deps
  const videos = [...new Set(entry.requests.map((r) => r.videoId))]
  const rs = await ch.query({
    query: 'SELECT count() AS n FROM raw_events WHERE video_id IN {videos:Array(String)} AND insert_token = {token:String}',
    query_params: { videos, token: entry.token },
    format: 'JSONEachRow',
  })
  const landed = Number(((await rs.json()) as { n: string }[])[0]?.n ?? 0)
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
      const owned = await rules.claim(req.videoId, req.sessionId, replayId, decided.map(({ row: r }) => ({ id: r.event_id, record: `${req.requestId}|${r.outcome}|${r.reason}|${r.credited_watch_ms}` })))
      lines.push(...invalid, ...decided.filter((_, i) => owned[i]).map((d) => d.line))
      marks.push({ ...req, requestId: replayId })
    }
  }
  // The entry's own lines (or those of them still owned), under the entry's own token.
  if (lines.length > 0) await insertRawEvents(ch, lines.map((l) => `${l}\n`), entry.token)
  await rules.markRequests(marks, true)
  await wal.remove(entry.token)
  log.info('repaired an unfinished flush', { token: entry.token, rows: lines.length, of: entry.lines.length, raw_already_had: landed })
}
