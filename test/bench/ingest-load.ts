/**
 * The load generator of bench:ingest, in its own process (started by ingest.ts).
 * Each of `sessions` concurrent players plays one video after another: a playback
 * session per video (a fresh ES256 token), batches of 10–50 events sent one after
 * the other, each retried until it gets a 200 (as players do), Zipf popularity.
 * Abuse: self-views (the creator watching), repeated batches, bad tokens.
 *
 * Event ids encode the player slot and a sequence number (decimal digits are valid
 * hex), so the acknowledged ids are, per slot, the prefix 0..acked-1: the verifier
 * checks them with one join instead of a list of millions of ids.
 *
 * Config: JSON in BENCH_LOAD (see LoadConfig); result: JSON written to `out`.
 */
import { writeFileSync } from 'node:fs'
import { keepAliveConnection, type KeepAliveConnection } from './keep-alive.ts'
import { sessionMaker, sessionsFor, type Session } from './ingest-sessions.ts'
import { CLOCK_STARTED } from './lib.ts'

export type LoadConfig = {
  url: string
  jwksFile: string
  issuer: string
  sessions: number
  seconds: number
  videos: number
  creators: number
  /** The creator of the videos whose rank is a multiple of `creators` (bench:settle's day gives them the bench creator); default c0. */
  creator0?: string
  zipfS: number
  ips: number
  selfViewShare: number
  repeatShare: number
  badTokenShare: number
  /** Pause of a player between two batches (ms); 0 sends the next batch at once (closed loop, saturation). */
  thinkMs: number
  seed: number
  out: string
}

export type LoadResult = {
  seconds: number
  requests: number
  statuses: Record<string, number>
  accepted: number
  duplicates: number
  rejected: Record<string, number>
  acked_events: number
  /** Per slot: events 0..n-1 were acknowledged. */
  acked_per_slot: number[]
  latencies_ms: number[]
  /** When each of latencies_ms was sent, seconds since the start. */
  sent_at_s: number[]
  accepted_per_second: number[]
  sessions_started: number
  cpu_seconds: number
  network_errors: number
  /** TCP connections the players opened (one each, again only after the server closed one or it failed). */
  connections_opened?: number
  /** Answers 503 in each second (by when they came): warm-up refusals told apart from those of a steady overload. */
  refused_per_second?: number[]
  /** How late this process's 10 ms timer fired in each second, summed (ms): its own thread held that long, its players' answers read late. */
  loop_held_ms_by_second?: number[]
}

const cfg = JSON.parse(process.env.BENCH_LOAD ?? '') as LoadConfig
const sessions = await sessionMaker(cfg)
const random = sessions.random
// Players get their tokens from the platform's token service, not from their own machines: the
// tokens are signed before the clock starts (as the wrk generator does), enough for 120,000
// events/s closed loop; past that, as players need them. Signing during the run cost the
// generator ~100 µs a session (15 % of its CPU in a profile).
const presigned: Session[] = []
for (let i = 0, n = sessionsFor(cfg, 120_000); i < n; i++) presigned.push(await sessions.next())
let nextPresigned = 0
const nextSession = (): Promise<Session> | Session => (nextPresigned < presigned.length ? presigned[nextPresigned++]! : sessions.next())
const target = new URL(cfg.url)
const targetPort = Number(target.port || 80)
/** Each player's own connection, kept open between its batches (see keep-alive.ts). */
const connections: KeepAliveConnection[] = []

const statuses: Record<string, number> = {}
const rejected: Record<string, number> = {}
const latencies: number[] = []
const sentAt: number[] = []
const perSecond: number[] = []
const refusedPerSecond: number[] = []
const ackedPerSlot = new Array<number>(cfg.sessions).fill(0)
let accepted = 0
let duplicates = 0
let requests = 0
let sessionsStarted = 0
let networkErrors = 0
// bench:ingest starts measuring the server when this line comes (after the tokens' signing).
console.log(CLOCK_STARTED)
const cpu0 = process.cpuUsage()
const t0 = performance.now()
const deadline = t0 + cfg.seconds * 1000
const loopHeld: number[] = []
let due = performance.now() + 10
const loopTimer = setInterval(() => {
  const now = performance.now()
  const sec = Math.floor((now - t0) / 1000)
  loopHeld[sec] = (loopHeld[sec] ?? 0) + Math.max(0, now - due)
  due = now + 10
}, 10)
const ZEROS = Array.from({ length: 13 }, (_, n) => '0'.repeat(n))
const pad = (n: number, w: number) => {
  const text = String(n)
  if (text.length > w) throw new Error(`${n} does not fit ${w} digits`)
  return ZEROS[w - text.length] + text
}
/** A player's event ids: its slot in the first group, the sequence number in the last (see the top). */
const idPrefix = (slot: number) => `${pad(slot, 8)}-b0b0-4000-8000-`

type Sent = { status: number; body?: { accepted: number; duplicates: number; rejected: { reason: string }[] }; retryAfter: number }

async function post(conn: KeepAliveConnection, token: string, ip: string, body: string): Promise<Sent> {
  const started = performance.now()
  requests++
  try {
    const res = await conn.request('POST', '/v1/events', { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-forwarded-for': ip }, body)
    statuses[res.status] = (statuses[res.status] ?? 0) + 1
    if (res.status === 503) {
      const sec = Math.floor((performance.now() - t0) / 1000)
      refusedPerSecond[sec] = (refusedPerSecond[sec] ?? 0) + 1
    }
    if (res.status !== 200) return { status: res.status, retryAfter: Number(res.headers['retry-after'] ?? 1) }
    const now = performance.now()
    latencies.push(now - started)
    sentAt.push(+((started - t0) / 1000).toFixed(3))
    return { status: 200, body: JSON.parse(res.body), retryAfter: 0 }
  } catch {
    networkErrors++
    return { status: 0, retryAfter: 1 }
  }
}

function count(sent: Sent): void {
  const b = sent.body!
  const sec = Math.floor((performance.now() - t0) / 1000)
  perSecond[sec] = (perSecond[sec] ?? 0) + b.accepted
  accepted += b.accepted
  duplicates += b.duplicates
  for (const r of b.rejected) rejected[r.reason] = (rejected[r.reason] ?? 0) + 1
}

/** A token whose signature is wrong: the edge pays the full ES256 verification and answers 401. */
function spoil(token: string): string {
  const dot = token.lastIndexOf('.')
  const sig = token.slice(dot + 1)
  return `${token.slice(0, dot + 1)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`
}

async function player(slot: number): Promise<void> {
  let seq = 0
  const prefix = idPrefix(slot)
  const conn = (connections[slot] = keepAliveConnection(target.hostname, targetPort))
  // Paced players press play at random moments over the first think time, not all at once.
  if (cfg.thinkMs > 0) await new Promise((r) => setTimeout(r, cfg.thinkMs * random()))
  while (performance.now() < deadline) {
    const { token, ip, adId } = await nextSession()
    sessionsStarted++
    const batches = 3 + Math.floor(random() * 10)
    let position = 0
    for (let b = 0; b < batches && performance.now() < deadline; b++) {
      const n = 10 + Math.floor(random() * 41)
      const now = Date.now()
      const parts: string[] = []
      for (let i = 0; i < n; i++) {
        const id = prefix + pad(seq + i, 12)
        const ts = now - (n - 1 - i) * 20
        if (b === 0 && i === 0) parts.push(`{"id":"${id}","type":"play","ts":${ts},"position_ms":0}`)
        else if (b === 0 && i === 1) parts.push(`{"id":"${id}","type":"ad_impression","ts":${ts},"position_ms":0,"ad_id":"${adId}"}`)
        else if (b === batches - 1 && i === n - 1) parts.push(`{"id":"${id}","type":"end","ts":${ts},"position_ms":${position}}`)
        else if (i % 17 === 16) parts.push(`{"id":"${id}","type":"pause","ts":${ts},"position_ms":${position}}`)
        else {
          position += 1000
          parts.push(`{"id":"${id}","type":"progress","ts":${ts},"position_ms":${position},"watched_ms":1000}`)
        }
      }
      const body = `{"events":[${parts.join(',')}]}`
      if (random() < cfg.badTokenShare) await post(conn, spoil(token), ip, body)
      for (;;) {
        const sent = await post(conn, token, ip, body)
        if (sent.status === 200) {
          count(sent)
          seq += n
          ackedPerSlot[slot] = seq
          break
        }
        if (performance.now() > deadline) return
        await new Promise((r) => setTimeout(r, Math.min(2000, sent.retryAfter * 1000)))
      }
      // A player that missed the answer sends the same batch again: nothing may change.
      if (random() < cfg.repeatShare) {
        const again = await post(conn, token, ip, body)
        if (again.status === 200) count(again)
      }
      // Real players send a batch every few seconds; jittered so sessions do not march in step.
      if (cfg.thinkMs > 0) await new Promise((r) => setTimeout(r, cfg.thinkMs * (0.5 + random())))
    }
  }
}

await Promise.all(Array.from({ length: cfg.sessions }, (_, i) => player(i)))
for (const c of connections) c.close()
clearInterval(loopTimer)
const elapsed = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
const result: LoadResult = {
  seconds: elapsed,
  requests,
  statuses,
  accepted,
  duplicates,
  rejected,
  acked_events: ackedPerSlot.reduce((a, b) => a + b, 0),
  acked_per_slot: ackedPerSlot,
  latencies_ms: latencies,
  sent_at_s: sentAt,
  accepted_per_second: Array.from({ length: perSecond.length }, (_, i) => perSecond[i] ?? 0),
  refused_per_second: Array.from({ length: refusedPerSecond.length }, (_, i) => refusedPerSecond[i] ?? 0),
  sessions_started: sessionsStarted,
  cpu_seconds: (cpu.user + cpu.system) / 1e6,
  network_errors: networkErrors,
  connections_opened: connections.reduce((n, c) => n + c.opened, 0),
  loop_held_ms_by_second: Array.from(loopHeld, (ms) => Math.round(ms ?? 0)),
}
writeFileSync(cfg.out, JSON.stringify(result))
console.log(JSON.stringify({ ok: true }))
