import type { ClickHouseClient } from '../lib/clickhouse.ts'
import type { Logger } from '../lib/log.ts'
import { insertRawEvents, type RawEventRow } from './events/rows.ts'
import { newRequestId, type Rules } from './state/decide.ts'
import type { Wal, WalEntry } from './wal.ts'

export type RepairDeps = { ch: ClickHouseClient; rules: Rules; wal: Wal<RawEventRow>; log: Logger; inFlight: { has(token: string): boolean } }

/**
 * Finishes the flushes the write-ahead log still holds (after a crash, or an insert
 * that failed). If raw_events already has the flush's rows, the same block is inserted
 * again with the same dedup token: raw_events skips it and each materialized view adds
 * only what it lacks. If not, the flush's events may meanwhile have been taken over by
 * a retry, so only the events its requests still own are stored.
 *
 * @returns the number of entries finished
 */
export async function repairWal(deps: RepairDeps): Promise<number> {
  let done = 0
  for (const entry of deps.wal.list()) {
    if (deps.inFlight.has(entry.token)) continue
    await repairEntry(deps, entry)
    done++
  }
  return done
}

async function repairEntry(deps: RepairDeps, entry: WalEntry<RawEventRow>): Promise<void> {
  const { ch, rules, wal, log } = deps
  const videos = [...new Set(entry.requests.map((r) => r.videoId))]
  const rs = await ch.query({
    query: 'SELECT count() AS n FROM raw_events WHERE video_id IN {videos:Array(String)} AND insert_token = {token:String}',
    query_params: { videos, token: entry.token },
    format: 'JSONEachRow',
  })
  const landed = Number(((await rs.json()) as { n: string }[])[0]?.n ?? 0)
  let rows = entry.rows
  const marks = [...entry.requests]
  if (landed === 0) {
    const replayId = newRequestId()
    rows = []
    let offset = 0
    for (const req of entry.requests) {
      const own = entry.rows.slice(offset, offset + req.rows)
      offset += req.rows
      // Items that failed validation have no id of their own to claim: they are this flush's alone.
      const invalid = own.filter((r) => r.reason === 'invalid_event')
      const decided = own.filter((r) => r.reason !== 'invalid_event')
      const owned = await rules.claim(req.videoId, req.sessionId, replayId, decided.map((r) => ({ id: r.event_id, record: `${req.requestId}|${r.outcome}|${r.reason}|${r.credited_watch_ms}` })))
      rows.push(...invalid, ...decided.filter((_, i) => owned[i]))
      marks.push({ ...req, requestId: replayId })
    }
  }
  if (rows.length > 0) {
    await insertRawEvents(ch, rows, entry.token)
  }
  await rules.markRequests(marks, true)
  wal.remove(entry.token)
  log.info('repaired an unfinished flush', { token: entry.token, rows: rows.length, of: entry.rows.length, raw_already_had: landed })
}
