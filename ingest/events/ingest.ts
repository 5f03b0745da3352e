import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import type { Settings } from '../../lib/config.ts'
import type { Decided, Decision, RuleInput, Rules } from '../state/decide.ts'
import { decisionRecord, newRequestId, requestStartedAt, STORED_IN_CLICKHOUSE, type Outcome } from '../state/decide.ts'
import type { PlaybackClaims } from '../tokens/playback.ts'
import { ROW_END_CHARS, rowContext, rowText } from './rows.ts'
import { describeIssue, eventSchema, type PlaybackEvent } from './schema.ts'

export type Rejection = { index: number; reason: string; detail?: string }
export type IngestResult = { accepted: number; duplicates: number; rejected: Rejection[] }
export type { WalRequest as CommitMeta } from '../wal.ts'
import type { WalRequest as CommitMeta } from '../wal.ts'

/** Why a batch could not be taken; the route maps each to a status. */
export type IngestRefusal =
  | { kind: 'overloaded' }
  | { kind: 'rate_limited'; retryAfterSeconds: number }
  | { kind: 'in_flight'; retryAfterSeconds: number }
  /** Old events of a session whose decisions expired, while some edge's loads are behind. */
  | { kind: 'loads_behind'; retryAfterSeconds: number }

export type IngestDeps = {
  settings: Settings
  ch: ClickHouseClient
  rules: Rules
  writer: {
    reserve(rows: number, bytes: number): boolean
    waitForRoom(rows: number, ms: number, bytes: number): Promise<boolean>
    release(rows: number, bytes: number): void
    submit(rows: string[], meta: CommitMeta, bytes: number): Promise<void>
  }
  /** Whether every edge's loads into ClickHouse are current (see LoadWatch); absent: this edge's alone count, and they are. */
  loadsCurrent?(): Promise<boolean>
  /** Seconds spent waiting for room in a full buffer (only when it waited), deciding (validation and the Redis rules), and waiting for the commit. */
  onStage?(stage: 'room' | 'decide' | 'commit', seconds: number): void
}

type Checked =
  | { index: number; valid: true; event: PlaybackEvent; preRejected: string }
  | { index: number; valid: false; raw: unknown; detail: string }

/** Validates each event on its own and applies the time rules of SPEC §4. */
export function checkEvents(raw: unknown[], claims: PlaybackClaims, settings: Settings, now: number): Checked[] {
  const latest = now + settings.FUTURE_TOLERANCE_SECONDS * 1000
  const earliest = now - settings.LATENESS_WINDOW_HOURS * 3_600_000
  return raw.map((item, index) => {
    const parsed = eventSchema.safeParse(item)
    if (!parsed.success) return { index, valid: false, raw: item, detail: describeIssue(parsed.error) }
    const e = parsed.data
    let preRejected = ''
    if (e.ts > latest) preRejected = 'future_timestamp'
    else if (e.ts < earliest) preRejected = 'too_late'
    else if (e.position_ms > claims.dur) preRejected = 'position_out_of_range'
    return { index, valid: true, event: e, preRejected }
  })
}

/**
 * Room a request's rows may take in the buffer, reserved before they are made: their text is
 * the shared part of the request (`shared`) and at most 256 characters of fixed fields a row,
 * plus what comes from the events' own text (an ad id, an invalid event's payload), which the
 * escaping for TabSeparated can at most double. `bodyChars`: the request body's length.
 */
export function reservedBytes(rows: number, shared: string, bodyChars: number): number {
  return rows * (shared.length + 256) + 2 * bodyChars
}

/**
 * Takes one request's events: decides each in Redis (or finds the decision a
 * retry of it got before), stores the new ones through the group commit, and
 * resolves once they are durable. Throws on storage failures (the caller answers 503).
 */
export async function ingestBatch(
  deps: IngestDeps,
  input: { claims: PlaybackClaims; ip: string; events: unknown[]; now?: number; bodyChars: number },
): Promise<IngestResult | IngestRefusal> {
  const { settings, rules, writer } = deps
  const { claims, ip } = input
  const now = input.now ?? Date.now()
  let startedAt = performance.now()
  const checked = checkEvents(input.events, claims, settings, now)
  const ctx = rowContext({ claims, ip, now })
  let bytes = reservedBytes(checked.length, ctx.shared, input.bodyChars)
  if (!writer.reserve(checked.length, bytes)) {
    // A full buffer holds the batch a while (nothing of it decided yet) rather than sending it
    // away at once for a second's Retry-After: room comes back with each load.
    const waitedFrom = performance.now()
    const room = await writer.waitForRoom(checked.length, settings.BUFFER_WAIT_MS, bytes)
    startedAt = performance.now()
    if (settings.BUFFER_WAIT_MS > 0) deps.onStage?.('room', (startedAt - waitedFrom) / 1000)
    if (!room) return { kind: 'overloaded' }
  }
  let reserved = checked.length
  const requestId = newRequestId(now)
  let submitted = false
  try {
    const rows: string[] = []
    const rejected: Rejection[] = []
    let accepted = 0
    let duplicates = 0

    for (const c of checked) {
      if (c.valid) continue
      rejected.push({ index: c.index, reason: 'invalid_event', detail: c.detail })
      rows.push(rowText(ctx, { kind: 'invalid', raw: c.raw, reason: 'invalid_event' }))
    }

    const valid = checked.filter((c): c is Extract<Checked, { valid: true }> => c.valid)
    const inputs: RuleInput[] = valid.map((c) => ({
      id: c.event.id,
      type: c.event.type,
      ts: c.event.ts,
      positionMs: c.event.position_ms,
      watchedMs: c.event.type === 'progress' ? c.event.watched_ms : 0,
      adId: c.event.type === 'ad_impression' ? c.event.ad_id : '',
      preRejected: c.preRejected,
    }))
    // Called even with no valid event: the token's rate limit is taken there.
    let decision = await rules.decide(requestId, claims, ip, now, inputs)
    if ('cold' in decision) {
      // The session's decisions expired while it sat idle, and some of these events are old
      // enough to have been decided before: raw_events says whether they were, once every
      // load of their time has landed.
      if (!(await (deps.loadsCurrent?.() ?? true))) return { kind: 'loads_behind', retryAfterSeconds: 2 }
      const ids = [...new Set(decision.cold.map((i) => inputs[i]!.id))]
      const stored = await storedDecisions(deps.ch, claims.vid, claims.sid, ids)
      decision = await rules.decide(requestId, claims, ip, now, inputs, new Map(ids.map((id) => [id, stored.get(id) ?? ''])))
      // Expired again between the two calls (another idle period cannot fit in between): ask for a retry.
      if ('cold' in decision) return { kind: 'loads_behind', retryAfterSeconds: 1 }
    }
    if ('rateLimitedMs' in decision) return { kind: 'rate_limited', retryAfterSeconds: Math.max(1, Math.ceil(decision.rateLimitedMs / 1000)) }
    const decided: Decided[] = decision

    const take = (c: (typeof valid)[number], d: Decision) => {
      rows.push(rowText(ctx, { kind: 'event', event: c.event, decision: d }))
      if (d.outcome === 'rejected') rejected.push({ index: c.index, reason: d.reason })
      else accepted++
    }
    const earlier: { c: (typeof valid)[number]; d: Extract<Decided, { kind: 'recorded' }> }[] = []
    decided.forEach((d, i) => {
      const c = valid[i]!
      if (d.kind === 'new') take(c, d.decision)
      else if (d.requestId === requestId) duplicates++ // the same id twice in this batch
      else earlier.push({ c, d })
    })

    let inFlightUntil = 0
    /** Events this request took over and found in raw_events: its records name it now. */
    let tookOverStored = false
    if (earlier.length > 0) {
      const states = await rules.requestStates(claims.vid, claims.sid, [...new Set(earlier.map((e) => e.d.requestId))])
      const abandoned: typeof earlier = []
      for (const e of earlier) {
        const state = states.get(e.d.requestId)
        if (state === '1') {
          if (e.d.decision.outcome === 'rejected') rejected.push({ index: e.c.index, reason: e.d.decision.reason })
          else duplicates++
        } else if (state === '0' || requestStartedAt(e.d.requestId) + settings.INFLIGHT_LEASE_MS < now) abandoned.push(e)
        else inFlightUntil = Math.max(inFlightUntil, requestStartedAt(e.d.requestId) + settings.INFLIGHT_LEASE_MS)
      }
      if (abandoned.length > 0) {
        // Take the abandoned events over (one claimant wins), then store those ClickHouse lacks.
        const owned = await rules.claim(claims.vid, claims.sid, requestId, abandoned.map((e) => ({ id: e.c.event.id, record: e.d.record })))
        const mine = abandoned.filter((_, i) => owned[i] === 'mine')
        const stored = await storedIds(deps.ch, claims.vid, claims.sid, mine.map((e) => e.c.event.id))
        for (const e of abandoned) {
          const isMine = owned[abandoned.indexOf(e)] === 'mine'
          if (!isMine) inFlightUntil = Math.max(inFlightUntil, now + 1000)
          else if (stored.has(e.c.event.id)) {
            tookOverStored = true
            if (e.d.decision.outcome === 'rejected') rejected.push({ index: e.c.index, reason: e.d.decision.reason })
            else duplicates++
          } else take(e.c, e.d.decision)
        }
      }
    }

    // The rows' text as it will be logged, each line with the flush's token and its end.
    let text = 0
    for (const r of rows) text += r.length + ROW_END_CHARS
    writer.release(reserved - rows.length, bytes - text)
    reserved = 0
    bytes = 0
    submitted = true
    const decidedAt = performance.now()
    deps.onStage?.('decide', (decidedAt - startedAt) / 1000)
    await writer.submit(rows, { videoId: claims.vid, sessionId: claims.sid, requestId, rows: rows.length, exp: claims.exp }, text)
    // A flush marks its requests; one with no rows has none, yet what it took over is stored:
    // marked here, so that a retry is answered at once instead of waiting out its lease.
    if (rows.length === 0 && tookOverStored) await rules.markRequests([{ videoId: claims.vid, sessionId: claims.sid, requestId }], true)
    deps.onStage?.('commit', (performance.now() - decidedAt) / 1000)
    if (inFlightUntil > 0) return { kind: 'in_flight', retryAfterSeconds: Math.max(1, Math.ceil((inFlightUntil - now) / 1000)) }
    rejected.sort((a, b) => a.index - b.index)
    return { accepted, duplicates, rejected }
  } catch (err) {
    // Nothing of this request reached the writer: let a retry take its events over at once.
    if (!submitted) await rules.markRequests([{ videoId: claims.vid, sessionId: claims.sid, requestId }], false).catch(() => {})
    throw err
  } finally {
    if (reserved > 0) writer.release(reserved, bytes)
  }
}

/** What raw_events holds of these ids of a session, as decision records (id -> record). */
async function storedDecisions(ch: ClickHouseClient, videoId: string, sessionId: string, ids: string[]): Promise<Map<string, string>> {
  // Ids are bound as strings: chDB 3.4 silently matches nothing for UUID-typed parameters.
  const rs = await ch.query({
    query: `SELECT toString(event_id) AS id, outcome, reason, credited_watch_ms AS credited FROM raw_events
            WHERE video_id = {video:String} AND session_id = {session:String} AND toString(event_id) IN {ids:Array(String)}
            LIMIT 1 BY event_id`,
    query_params: { video: videoId, session: sessionId, ids },
    format: 'JSONEachRow',
  })
  const rows = (await rs.json()) as { id: string; outcome: string; reason: string; credited: string | number }[]
  return new Map(rows.map((r) => [r.id, decisionRecord(STORED_IN_CLICKHOUSE, { outcome: r.outcome as Outcome, reason: r.reason, credited: Number(r.credited) })]))
}

/**
 * Event ids of this session already in raw_events (for takeovers after a crash or failed
 * insert), as lowercase text: ids logged until 5 December keep the case their client sent.
 */
export async function storedIds(ch: ClickHouseClient, videoId: string, sessionId: string, given: string[]): Promise<Set<string>> {
  if (given.length === 0) return new Set()
  const ids = given.map((id) => id.toLowerCase())
  // Ids are bound as strings: chDB 3.4 silently matches nothing for UUID-typed parameters.
  const rs = await ch.query({
    query: `SELECT DISTINCT toString(event_id) AS id FROM raw_events
            WHERE video_id = {video:String} AND session_id = {session:String} AND toString(event_id) IN {ids:Array(String)}`,
    query_params: { video: videoId, session: sessionId, ids },
    format: 'JSONEachRow',
  })
  return new Set(((await rs.json()) as { id: string }[]).map((r) => r.id))
}
