import { fileURLToPath } from 'node:url'
import type { ChainableCommander } from 'ioredis'
import type { Settings } from '../../lib/config.ts'
import { scriptOf, type ScriptRunner } from '../../lib/bun-redis.ts'
import { defineScripts, scriptSource, type Redis } from '../../lib/redis.ts'
import type { EventType } from '../events/schema.ts'
import type { PlaybackClaims } from '../tokens/playback.ts'
import { keys } from './keys.ts'

const script = (name: string) => fileURLToPath(new URL(`../lua/${name}.lua`, import.meta.url))

export type Outcome = 'counted' | 'stored' | 'excluded' | 'rejected'
export type Decision = { outcome: Outcome; reason: string; credited: number }
export type Decided =
  | { kind: 'new'; decision: Decision }
  | { kind: 'recorded'; requestId: string; record: string; decision: Decision }

/** An event ready for the rules: validated, with its rejection already known when time rules failed. */
export type RuleInput = { id: string; type: EventType; ts: number; positionMs: number; watchedMs: number; adId: string; preRejected: string }

type ScriptedRedis = Redis & {
  csRateLimit(key: string, now: number, rate: number, burst: number, cost: number): Promise<number>
  csIngest(numberOfKeys: number, ...args: (string | number)[]): Promise<[string, string | number]>
  csClaim(events: string, state: string, ...args: string[]): Promise<number[]>
  csMark(events: string, field: string, value: '1' | '0'): Promise<number>
}
/** An event's type as ingest.lua's TYPES reads it: one letter. */
const TYPE_LETTERS: Record<EventType, string> = { play: 'p', pause: 'u', seek: 's', end: 'e', progress: 'g', ad_impression: 'a' }
/** The fixed part of an event's record for ingest.lua: id field 20, type 1, ts 16, position 10, watched 10, ad 2. */
export const EVENT_WIDTH = 59

/** Z85 (ZeroMQ RFC 32): 85 printable characters, none of them `|`, a space, a quote or a control byte. */
const Z85 = Uint8Array.from('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#', (c) => c.charCodeAt(0))
const HEX_VALUES = new Int8Array(128).fill(-1)
for (let i = 0; i < 16; i++) {
  HEX_VALUES['0123456789abcdef'.charCodeAt(i)] = i
  HEX_VALUES['0123456789ABCDEF'.charCodeAt(i)] = i
}
/** The number written by the hex digits of `text` from `at` to `end`, or -1 when one is not a hex digit. */
function hexValue(text: string, at: number, end: number): number {
  let value = 0
  for (let k = at; k < end; k++) {
    const c = text.charCodeAt(k)
    const digit = c < 128 ? HEX_VALUES[c]! : -1
    if (digit < 0) return -1
    value = value * 16 + digit
  }
  return value
}
/** Writes `word` (32 bits) as 5 Z85 digits at `at` of `out` (by division: `%` of a double past 2^31 costs tens of ns). */
function putZ85(out: Buffer, word: number, at: number): void {
  for (let k = at + 4; k > at; k--) {
    const q = Math.floor(word / 85)
    out[k] = Z85[word - q * 85]!
    word = q
  }
  out[at] = Z85[word]!
}

/** Writes the field of event id `id` (see eventField) at `at` of `out`; throws when it is not a UUID. */
function putField(out: Buffer, id: string, at: number): void {
  const dashes = id.length === 36 && id.charCodeAt(8) === 45 && id.charCodeAt(13) === 45 && id.charCodeAt(18) === 45 && id.charCodeAt(23) === 45
  const w0 = hexValue(id, 0, 8), a = hexValue(id, 9, 13), b = hexValue(id, 14, 18), c = hexValue(id, 19, 23), d = hexValue(id, 24, 28), w3 = hexValue(id, 28, 36)
  if (!dashes || w0 < 0 || a < 0 || b < 0 || c < 0 || d < 0 || w3 < 0) throw new Error(`event id ${id} is not a UUID`)
  putZ85(out, w0, at)
  putZ85(out, a * 65536 + b, at + 5)
  putZ85(out, c * 65536 + d, at + 10)
  putZ85(out, w3, at + 15)
}

const fieldBytes = Buffer.alloc(20)
/**
 * An event id as the field of its decision in the session's events hash: the UUID's 16 bytes
 * in Z85, 20 characters where the text takes 36 (Redis allocates 24 bytes for the field
 * instead of 40, and the append-only file writes 16 fewer an event). Either case of the
 * hex digits gives the same field, as the same UUID in raw_events. Fields of decisions taken
 * until 5 December are the id's text (see ingest.lua's `legacy`). About 0.13 µs in Bun, most
 * of it making the string (single characters joined took 0.4–0.6 µs).
 */
export function eventField(id: string): string {
  putField(fieldBytes, id, 0)
  return fieldBytes.toString('latin1', 0, 20)
}

/** Writes `value` as `width` zero-padded decimal digits at `at` of `out`; throws when it does not fit. */
function putDigits(out: Buffer, value: number, width: number, at: number, what: string): void {
  if (!(value >= 0) || !Number.isSafeInteger(value) || value >= 10 ** width) throw new Error(`${what} ${value} does not fit ${width} digits`)
  for (let k = at + width - 1; k >= at; k--) {
    const q = Math.floor(value / 10)
    out[k] = 48 + (value - q * 10)
    value = q
  }
}

const TYPE_BYTES = Object.fromEntries(Object.entries(TYPE_LETTERS).map(([type, letter]) => [type, letter.charCodeAt(0)])) as Record<EventType, number>
/** The batch's records are written here, then read as one string (grown for a larger batch). */
let recordBytes = Buffer.alloc(EVENT_WIDTH * 64)

/**
 * A batch as ingest.lua reads it (ARGV[13+n] there): each event a fixed-width record (EVENT_WIDTH),
 * one after another; then "\x1e*" when an id appears more than once (only then does the script
 * keep this call's decisions by id), then "\x1e<1-based index>\x1f<reason>" for each event
 * with a pre-decided rejection reason. The fields are validated before (a UUID, a type, times
 * and positions within their limits, at most 32 ads a token), so they fit; a ts before 1970 (an
 * RFC 3339 time can be one) is sent as 0, which the script treats alike: such an event is
 * rejected as too late before it gets there. The records are written as bytes into one buffer
 * and read back as one flat string (built from strings, each record was a rope of a dozen
 * pieces that Redis's client flattened again). By the edge's CPU profile under bench:ingest
 * packEvents took 0.36–0.40 µs of the JavaScript thread an event against 0.61–0.79 and the
 * client's send 0.44–0.45 against 0.54–0.65; timed alone in Bun, and in alternation without
 * the profiler, the two ways cost the same (test/bench/HISTORY.md, sixteenth session).
 */
export function packEvents(events: RuleInput[], ads: string[]): string {
  const n = events.length
  if (recordBytes.length < n * EVENT_WIDTH) recordBytes = Buffer.alloc(n * EVENT_WIDTH * 2)
  const out = recordBytes
  let reasons = ''
  const ids = new Set<string>()
  for (let i = 0; i < n; i++) {
    const e = events[i]!
    const at = i * EVENT_WIDTH
    putField(out, e.id, at)
    ids.add(e.id.toLowerCase())
    out[at + 20] = TYPE_BYTES[e.type]
    putDigits(out, Math.max(0, e.ts), 16, at + 21, 'ts')
    putDigits(out, e.positionMs, 10, at + 37, 'position')
    putDigits(out, e.watchedMs, 10, at + 47, 'watched')
    putDigits(out, e.type === 'ad_impression' ? ads.indexOf(e.adId) + 1 : 0, 2, at + 57, 'ad index')
    if (e.preRejected) reasons += `\x1e${i + 1}\x1f${e.preRejected}`
  }
  const records = out.toString('latin1', 0, n * EVENT_WIDTH)
  const repeats = ids.size < n ? '\x1e*' : ''
  return repeats || reasons ? records + repeats + reasons : records
}

/** An outcome as records and answers carry it: one letter (records until 5 December: the word). */
const OUTCOME_LETTERS: Record<Outcome, string> = { counted: 'c', stored: 's', excluded: 'x', rejected: 'r' }
/** An outcome by its letter or (records until 5 December) its word. */
const OUTCOMES: Record<string, Outcome> = Object.fromEntries(
  (Object.entries(OUTCOME_LETTERS) as [Outcome, string][]).flatMap(([word, letter]) => [[letter, word], [word, word]]),
)

/**
 * The record of a decision in the session's events hash, as ingest.lua writes it:
 * "<request id>|<outcome letter>|<reason>|<credited ms>".
 */
export function decisionRecord(requestId: string, d: Decision): string {
  return `${requestId}|${OUTCOME_LETTERS[d.outcome]}|${d.reason}|${d.credited}`
}

/** A pipeline of the client, with the scripts it queues. */
type ScriptedPipeline = ChainableCommander & { csMark(events: string, field: string, value: '1' | '0'): ChainableCommander }

/** The field of a request's mark in its session's events hash (see mark.lua). */
const markField = (requestId: string) => `c:${requestId}`

/**
 * The request id of decisions read back from raw_events (see `decide`'s `lookedUp`): they
 * are stored, so a retry of them is a duplicate.
 */
export const STORED_IN_CLICKHOUSE = 'ch'

/**
 * A request id carries its start time, so anyone can tell when its lease has run out, then 5
 * random base-36 characters: request ids are compared within one session only (its records
 * and marks), where two requests would have to start in the same millisecond and draw the same
 * of 60 million to clash. 14 characters (22 until 5 December, both read): a record "<request
 * id>|s||0" fits Redis's 24-byte allocation. A mark's field ("c:" and the id) is never 20
 * characters long, so it cannot be an event's field.
 */
export function newRequestId(now = Date.now()): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0]! % 60_466_176 // 36^5
  return `${now.toString(36)}-${random.toString(36).padStart(5, '0')}`
}

export function requestStartedAt(requestId: string): number {
  const t = parseInt(requestId.split('-')[0] ?? '', 36)
  return Number.isFinite(t) ? t : 0
}

/** "<outcome>|<reason>|<credited>" split; the outcome a letter, or (records until 5 December) a word. */
function parseDecision(parts: string[]): Decision {
  const outcome = OUTCOMES[parts[0]!]
  if (!outcome) throw new Error(`unknown outcome ${parts[0]} in a decision record`)
  return { outcome, reason: parts[1] ?? '', credited: Number(parts[2] ?? 0) }
}

/**
 * The counting rules of SPEC §5 and the bookkeeping that makes retries safe, in Redis.
 * Every call is one round trip to one hash slot (the video's). With `fast` (Bun's own
 * client, see lib/bun-redis.ts) the three scripts of every request (the IP bucket, the
 * ingest script, its mark after the flush) go through it, to the same Redis; the rest
 * through ioredis.
 */
export function createRules(redis: Redis, settings: Settings, fast?: ScriptRunner) {
  const specs = {
    csRateLimit: { file: script('ratelimit'), include: [script('numbers'), script('bucket')], numberOfKeys: 1 },
    // The key count varies with the ads in the token, so it is passed first on each call.
    csIngest: { file: script('ingest'), include: [script('numbers'), script('bucket')] },
    csClaim: { file: script('claim'), numberOfKeys: 2 },
    csMark: { file: script('mark'), numberOfKeys: 1 },
  }
  defineScripts(redis, specs)
  const r = redis as ScriptedRedis
  /** The scripts of every request through Bun's client, when given. */
  const viaBun = fast && {
    runner: fast,
    rateLimit: scriptOf(scriptSource(specs.csRateLimit)),
    ingest: scriptOf(scriptSource(specs.csIngest)),
    mark: scriptOf(scriptSource(specs.csMark)),
  }
  const windowMs = settings.VIEW_DEDUP_WINDOW_MINUTES * 60_000
  const maxKeepSeconds = settings.EVENT_DEDUP_DAYS * 86_400
  /** An event decided at time t has ts <= t + this, whichever edge's clock t is read on. */
  const decidedTsMarginMs = (settings.FUTURE_TOLERANCE_SECONDS + settings.CLOCK_TOLERANCE_SECONDS) * 1000
  /**
   * The longest a session's records are kept, in seconds (its state; its decisions and its
   * requests' marks go sooner, DECISION_IDLE_MINUTES after its last batch): until its playback
   * token has expired, plus the clock tolerance the edges allow and a minute, never longer than
   * EVENT_DEDUP_DAYS. No request of the session can be taken after that (its token is refused).
   */
  const keepSeconds = (exp: number | undefined, now: number): number =>
    exp === undefined ? maxKeepSeconds : Math.max(60, Math.min(maxKeepSeconds, exp + settings.CLOCK_TOLERANCE_SECONDS + 60 - Math.floor(now / 1000)))

  return {
    /** Takes one request from the client IP's bucket (its own slot); 0 when allowed, else ms to wait. */
    async rateLimit(ip: string, now: number): Promise<number> {
      const key = keys.ipBucket(ip)
      const { RATE_LIMIT_IP_PER_SECOND: rate, RATE_LIMIT_IP_BURST: burst } = settings
      // A request's first call, made from a tick of its own: while earlier calls wait for Redis, sent with
      // the other requests' calls of this turn (runSoon).
      if (viaBun) return Number(await viaBun.runner.runSoon(viaBun.rateLimit, 1, [key, String(now), String(rate), String(burst), '1']))
      return await r.csRateLimit(key, now, rate, burst, 1)
    },

    /**
     * Takes the request from the token's bucket, then decides every event of it (or
     * returns the decision recorded for a retried id), in one round trip. A request over
     * the token's budget changes nothing and gets the milliseconds to wait instead.
     *
     * A session's decisions are kept in Redis while it is active (DECISION_IDLE_MINUTES
     * after its last batch). When a batch comes after they expired and holds events old
     * enough to have been decided before (by their ts), nothing is decided: `cold` lists
     * them (indexes into `events`), and the caller looks their ids up in raw_events and
     * calls again with `lookedUp` (id -> the record of what raw_events holds, or '' when
     * it holds nothing: the event is new).
     */
    async decide(
      requestId: string,
      claims: PlaybackClaims,
      ip: string,
      now: number,
      events: RuleInput[],
      lookedUp?: Map<string, string>,
    ): Promise<Decided[] | { rateLimitedMs: number } | { cold: number[] }> {
      const ads = claims.ads
      const keyList = [
        keys.sessionEvents(claims.vid, claims.sid),
        keys.sessionState(claims.vid, claims.sid),
        keys.liveViews(claims.vid),
        keys.resume(claims.vid, claims.sub),
        keys.viewerWindow(claims.vid, claims.sub),
        keys.ipWindow(claims.vid, ip),
        ...ads.map((ad) => keys.adViewerWindow(claims.vid, ad, claims.sub)),
      ]
      const packed = packEvents(events, ads)
      let looked = ''
      for (const [id, record] of lookedUp ?? []) looked += `${looked ? '\x1e' : ''}${eventField(id)}\x1f${record}`
      const args = [
        ...keyList,
        requestId, String(now), claims.sub, claims.cid, String(claims.iat * 1000), String(claims.dur), String(windowMs), String(settings.MAX_VIEWS_PER_IP), String(keepSeconds(claims.exp, now)),
        String(settings.RATE_LIMIT_TOKEN_PER_SECOND), String(settings.RATE_LIMIT_TOKEN_BURST), String(ads.length), ...ads, packed, String(settings.RESUME_CACHE_HOURS * 3600),
        String(settings.DECISION_IDLE_MINUTES * 60), String(decidedTsMarginMs), looked,
      ]
      // Each request gets here in a microtask of its own, and Bun's client wrote each such call in a
      // send of its own (strace): while earlier calls wait for Redis, sent with the turn's (runSoon).
      const [status, out] = (viaBun ? await viaBun.runner.runSoon(viaBun.ingest, keyList.length, args) : await r.csIngest(keyList.length, ...args)) as [string, string | number]
      if (status === 'rl') return { rateLimitedMs: Number(out) }
      if (status === 'cold') return { cold: String(out).split(',').map((i) => Number(i) - 1) }
      if (events.length === 0) return []
      // Most events of a batch get the same new decision ("n|c||1000"): parsed once per call
      // and shared (nothing changes a decision once made).
      const made = new Map<string, Decided>()
      return String(out).split('\x1e').map((v) => {
        if (v.startsWith('n|')) {
          let d = made.get(v)
          if (!d) made.set(v, (d = { kind: 'new', decision: parseDecision(v.slice(2).split('|')) }))
          return d
        }
        const parts = v.split('|')
        return { kind: 'recorded', requestId: parts[1]!, record: parts.slice(1).join('|'), decision: parseDecision(parts.slice(2)) }
      })
    },

    /**
     * Which of these requests of a session reached ClickHouse ('1'), failed for sure ('0'), or
     * are unknown (null). Marks written before 3 December are keys of their own, read too until
     * they have expired with their tokens (PLAYBACK_TOKEN_TTL_SECONDS, at most EVENT_DEDUP_DAYS).
     */
    async requestStates(videoId: string, sessionId: string, requestIds: string[]): Promise<Map<string, '1' | '0' | null>> {
      const asked = requestIds.filter((id) => id !== STORED_IN_CLICKHOUSE)
      const states = new Map<string, '1' | '0' | null>()
      if (asked.length > 0) {
        const res = await r
          .pipeline()
          .hmget(keys.sessionEvents(videoId, sessionId), ...asked.map(markField))
          .mget(...asked.map((id) => keys.legacyMark(videoId, id)))
          .exec()
        for (const [err] of res ?? []) if (err) throw err
        const [inHash, ownKeys] = (res ?? []).map(([, v]) => v as (string | null)[])
        asked.forEach((id, i) => states.set(id, (inHash?.[i] ?? ownKeys?.[i] ?? null) as '1' | '0' | null))
      }
      if (asked.length < requestIds.length) states.set(STORED_IN_CLICKHOUSE, '1')
      return states
    },

    /**
     * Records that requests reached ClickHouse (or failed for certain), for retries to read, in
     * the hash of their session's decisions: a mark lives exactly as long as the records that
     * name its request (DECISION_IDLE_MINUTES after the session's last batch, at most until its
     * token expires), and none is written once they have expired.
     */
    async markRequests(entries: { videoId: string; sessionId: string; requestId: string }[], committed: boolean): Promise<void> {
      if (entries.length === 0) return
      const value = committed ? '1' : '0'
      // Through Bun's client one call each (it pipelines them), one hash slot per call as everywhere here.
      if (viaBun) {
        await Promise.all(entries.map((e) => viaBun.runner.run(viaBun.mark, 1, [keys.sessionEvents(e.videoId, e.sessionId), markField(e.requestId), value])))
        return
      }
      const p = r.pipeline() as ScriptedPipeline
      for (const e of entries) p.csMark(keys.sessionEvents(e.videoId, e.sessionId), markField(e.requestId), value)
      const res = await p.exec()
      for (const [err] of res ?? []) if (err) throw err
    },

    /**
     * Moves abandoned events to a new request: for each, `mine` (this request now owns it),
     * `taken` (another request holds it), or `forgotten`: no record is kept any more, and
     * either the session's state is (its decisions expired after it sat idle: a retry of
     * these events is looked up in raw_events, which waits while any edge, this one
     * included, has loads behind) or its token (`exp`, epoch s) has expired (no retry can
     * come). Only ClickHouse can then tell whether a takeover stored an event before. A
     * record missing with neither (Redis lost it) counts as taken: a retry may still decide it.
     */
    async claim(videoId: string, sessionId: string, requestId: string, seen: { id: string; record: string }[], exp?: number): Promise<('mine' | 'taken' | 'forgotten')[]> {
      if (seen.length === 0) return []
      const out = await r.csClaim(keys.sessionEvents(videoId, sessionId), keys.sessionState(videoId, sessionId), requestId, ...seen.flatMap((s) => [eventField(s.id), s.id.toLowerCase(), s.record]))
      const expired = exp !== undefined && Date.now() / 1000 > exp + settings.CLOCK_TOLERANCE_SECONDS
      return out.map((v) => (v === 1 ? 'mine' : v === 2 || (v === 3 && expired) ? 'forgotten' : 'taken'))
    },
  }
}

export type Rules = ReturnType<typeof createRules>
