import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { createMiddleware } from 'hono/factory'
import { ApiError, onError, problemResponse } from '../lib/errors.ts'
import type { AppEnv, Services } from '../lib/services.ts'
import { ingestBatch, type CommitMeta } from './events/ingest.ts'
import { encodeRows, infilePattern } from './events/rows.ts'
import { insertingRows, keepInWal } from './set-aside.ts'
import { describeIssue, envelopeSchema, MAX_BODY_BYTES } from './events/schema.ts'
import { createGroupCommit, FlushError } from './group-commit.ts'
import { createBunScripts } from '../lib/bun-redis.ts'
import { createRules } from './state/decide.ts'
import { createLoadWatch } from './state/loads.ts'
import { repairWal } from './repair.ts'
import { createWal, walDir } from './wal.ts'
import { createLoader } from './loader.ts'
import { createAdmission } from './admission.ts'
import { bumpAggregatesGeneration, markAggregatesLoad } from '../lib/aggregates-generation.ts'
import { PlaybackTokenError, type PlaybackClaims } from './tokens/playback.ts'

/** What the entry file passes as Hono's `env`: the socket address of the client. */
export type EdgeBindings = { ip?: string }
type EdgeEnv = AppEnv & { Bindings: EdgeBindings; Variables: { claims: PlaybackClaims; token: string } }
/** Labels of cs_ingest_events_total counted for every batch. */
const ACCEPTED = { outcome: 'accepted', reason: '' } as const
const DUPLICATE = { outcome: 'duplicate', reason: '' } as const

/**
 * The ingest edge: `POST /v1/events`, with its group-commit writer. `stopAccepting`
 * and `flush` are for shutdown.
 *
 * @example
 * const edge = createEdge(services)
 * Bun.serve({ fetch: (req, server) => edge.app.fetch(req, { ip: server.requestIP(req)?.address }) })
 */
export function createEdge(services: Services) {
  const { settings, ch, redis, metrics, log } = services
  // Under Bun, the scripts of every request through Bun's own client (see createBunScripts), to the same Redis.
  const target = settings.REDIS_URL ? { url: settings.REDIS_URL } : redis.options.path ? { path: redis.options.path } : undefined
  const fast = settings.EDGE_REDIS_CLIENT === 'bun' && target ? createBunScripts(target) : undefined
  const rules = createRules(redis, settings, fast)
  let accepting = true
  const wal = createWal(walDir(settings))
  /** Raw inserts of the loader and the repair: lines the engine cannot read are set aside rather than holding every later load up. */
  const insertRows = insertingRows(ch, keepInWal(wal, log, (rows) => metrics.rowsSetAside.inc(rows)))
  /** Whether every edge's loads are current, for lookups of old event ids in raw_events; this edge publishes its own. */
  const loads = createLoadWatch(redis, { edgeId: wal.edgeId(), oldestUnloaded: () => wal.oldestMs(), shared: !settings.embedded })
  /** Puts logged flushes into ClickHouse behind the answers, several per insert. */
  const loader = createLoader({
    wal,
    maxRows: settings.LOAD_MAX_ROWS,
    intervalMs: settings.LOAD_INTERVAL_MS,
    insert: (bodies, token, files) => insertRows(bodies, token, files).then(() => {}),
    // Embedded, the engine reads the rows from the log's entries themselves (no second copy of their text).
    filesOf: (entries) => {
      const files = entries.map(wal.file)
      return settings.embedded && infilePattern(files) !== undefined ? files : undefined
    },
    onLoad: (rows, seconds, oldestQueuedAt) => {
      metrics.flushRows.observe(rows)
      metrics.flushDuration.observe(seconds)
      // Held up past the margin analytics allows an insert (an outage, a long backlog): the
      // rows may belong to a day analytics already treats as closed and caches.
      if (Date.now() - oldestQueuedAt > settings.INSERT_TIMEOUT_MS) lateRowsLanded('a delayed load')
      // Analytics' answers over open periods computed before this load are now stale.
      void markAggregatesLoad(redis).catch((err) => log.warn('could not mark a load for analytics', { error: err instanceof Error ? err.message : String(err) }))
    },
    onError: (error, attempt) => {
      metrics.flushFailures.inc()
      if (attempt === 1 || attempt % 10 === 0)
        log.error('insert into raw_events failed; retrying (the events are safe in the write-ahead log)', { attempt, error: error instanceof Error ? error.message : String(error) })
    },
  })
  /**
   * Flushes this process is logging, from before their file can appear until the loader
   * has them (or they failed): the repair must leave them alone, or it would store an
   * entry the loader stores too. Token -> the entry's TabSeparated text once it is written.
   */
  const logging = new Map<string, string | undefined>()
  /**
   * Group commit into the write-ahead log: a request is answered once its rows are on
   * disk (fsync) and its events marked stored in Redis; the loader inserts them behind.
   * Rows waiting for the loader count against BUFFER_MAX_ROWS and their text against
   * BUFFER_MAX_BYTES, so a slow or absent ClickHouse turns into 503s with Retry-After,
   * never into unbounded memory.
   */
  const writer = createGroupCommit<string, CommitMeta>({
    maxRows: settings.FLUSH_MAX_ROWS,
    intervalMs: settings.FLUSH_INTERVAL_MS,
    maxBufferedRows: settings.BUFFER_MAX_ROWS,
    maxBufferedBytes: settings.BUFFER_MAX_BYTES,
    backlogRows: () => loader.backlogRows,
    backlogBytes: () => loader.backlogBytes,
    onFlush: (rows, seconds) => {
      metrics.walFlushRows.observe(rows)
      metrics.walFlushDuration.observe(seconds)
    },
    insert: async (rows, token, metas) => {
      if (logging.get(token) !== undefined) return // written by an earlier attempt
      const body = encodeRows(rows, token)
      logging.set(token, undefined)
      await wal.write(token, metas, body)
      logging.set(token, body)
    },
    afterCommit: async (metas, token) => {
      const body = logging.get(token)!
      try {
        // Marked stored before anyone is answered: a retry of these requests then gets
        // "duplicate" instead of storing the events a second time. If marking fails, the
        // entry stays in the log for the repair, which stores what its requests own.
        await rules.markRequests(metas, true)
        loader.enqueue({ token, body, rows: metas.reduce((n, m) => n + m.rows, 0) })
      } finally {
        logging.delete(token)
      }
    },
    afterFailure: async (metas, error, token) => {
      log.error('could not log a flush', { requests: metas.length, token, error: error instanceof Error ? error.message : String(error) })
      const written = logging.get(token) !== undefined
      logging.delete(token)
      // Not (wholly) written: nothing of it may reach ClickHouse, so retries may take
      // over at once. A file left by a write that failed late is the repair's, and the
      // repair stores only the events no retry has taken over.
      if (!written) await rules.markRequests(metas, false)
    },
  })
  /** Drops cached stats and top answers: rows reached ClickHouse later than analytics assumes. */
  const lateRowsLanded = (what: string) =>
    void bumpAggregatesGeneration(redis).catch((err) =>
      log.warn('could not drop cached aggregates after late rows', { what, error: err instanceof Error ? err.message : String(err) }),
    )
  const held = { has: (token: string) => logging.has(token) || loader.holds(token) }
  let repairing: Promise<number> | undefined
  /** Finishes what the write-ahead log holds and nothing in this process is working on (one repair at a time). */
  const repair = (): Promise<number> =>
    (repairing ??= repairWal({ ch, rules, wal, log, held, insertRows })
      .then((n) => {
        if (n > 0) lateRowsLanded('a repair')
        return n
      })
      .finally(() => (repairing = undefined)))

  for (const labels of [ACCEPTED, DUPLICATE]) metrics.eventsTotal.inc(labels, 0)
  const onStage = (stage: 'place' | 'room' | 'decide' | 'commit', seconds: number) => metrics.ingestStage.observe({ stage }, seconds)

  const playbackAuth = createMiddleware<EdgeEnv>(async function playbackAuth(c, next) {
    const header = c.req.header('authorization') ?? ''
    const m = /^Bearer\s+(\S+)$/i.exec(header)
    if (!m) throw new ApiError('UNAUTHORIZED', 'send the playback token as Authorization: Bearer <token>')
    try {
      c.set('claims', await services.verifyPlaybackToken(m[1]!))
      c.set('token', m[1]!)
    } catch (err) {
      if (err instanceof PlaybackTokenError) throw new ApiError('INVALID_TOKEN', `playback token refused: ${err.message}`)
      throw err
    }
    await next()
  })

  const admission = createAdmission({
    max: settings.INGEST_MAX_IN_PROGRESS,
    waitMs: settings.BUFFER_WAIT_MS,
    maxWaiting: settings.INGEST_MAX_WAITING,
    onWait: (ms) => onStage('place', ms / 1000),
  })
  /** Before the body is read: what a batch holds once parsed is bounded by the batches let in. */
  const admit = createMiddleware<EdgeEnv>(async function admit(_c, next) {
    const leave = await admission.enter()
    if (!leave) {
      metrics.batchesRefused.inc()
      throw new ApiError('OVERLOADED', ADMISSION_FULL, { retryAfterSeconds: 1 })
    }
    metrics.batchesInProgress.inc()
    try {
      await next()
    } finally {
      metrics.batchesInProgress.dec()
      leave()
    }
  })

  /**
   * A batch that would be refused at once, answered before anything else of it is done (no
   * token check, no body read, no route), and counted as the route and the root app count
   * theirs: see shed below.
   */
  const shedAnswer = (req: Request): Response | undefined => {
    if (!accepting || !admission.full || req.method !== 'POST' || pathOf(req.url) !== EVENTS_PATH) return undefined
    metrics.batchesRefused.inc()
    metrics.httpRequests.inc({ method: 'POST', route: EVENTS_PATH, status: '503' })
    return problemResponse(SHED, shedRequestId(req.headers.get('x-request-id')))
  }

  const requireJson = createMiddleware<EdgeEnv>(async function requireJson(c, next) {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
    if (type !== 'application/json') throw new ApiError('UNSUPPORTED_MEDIA_TYPE', `Content-Type must be application/json, not ${type || 'missing'}`)
    await next()
  })

  const app = new Hono<EdgeEnv>()
  app.onError(onError)
  app.post(
    EVENTS_PATH,
    async function acceptingGate(c, next) {
      if (!accepting) throw new ApiError('SHUTTING_DOWN', 'this edge is shutting down; retry', { retryAfterSeconds: 1 })
      await next()
    },
    requireJson,
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError('PAYLOAD_TOO_LARGE', `the body must be at most ${MAX_BODY_BYTES} bytes`)
      },
    }),
    playbackAuth,
    admit,
    async (c) => {
      let body: unknown
      let bodyChars: number
      try {
        const text = await c.req.text()
        bodyChars = text.length
        body = JSON.parse(text)
      } catch {
        throw new ApiError('INVALID_BODY', 'the body is not valid JSON')
      }
      const envelope = envelopeSchema.safeParse(body)
      if (!envelope.success) throw new ApiError('INVALID_BODY', describeIssue(envelope.error))
      // Read now, so that the parsed body is not kept alive while the request waits for its flush.
      const ends = envelope.data.events.some(isEnd)
      const claims = c.get('claims')
      const ip = clientIp(c.req.raw, c.env, settings.TRUST_PROXY)
      const now = Date.now()
      let result: Awaited<ReturnType<typeof ingestBatch>>
      try {
        const wait = await rules.rateLimit(ip, now)
        if (wait > 0) throw new ApiError('RATE_LIMITED', 'too many requests from this address', { retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) })
        result = await ingestBatch({ settings, ch, rules, writer, onStage, loadsCurrent: () => loads.current() }, { claims, ip, events: envelope.data.events, now, bodyChars })
      } catch (err) {
        if (err instanceof ApiError) throw err
        if (err instanceof FlushError) throw new ApiError('STORAGE_UNAVAILABLE', 'events could not be stored; retry the same batch', { retryAfterSeconds: 2 })
        log.warn('ingest failed', { request_id: c.get('requestId'), error: err instanceof Error ? err.message : String(err) })
        throw new ApiError('STORAGE_UNAVAILABLE', 'event state is unavailable; retry the same batch', { retryAfterSeconds: 2 })
      }
      if ('kind' in result) {
        if (result.kind === 'rate_limited') throw new ApiError('RATE_LIMITED', 'too many requests for this playback session', { retryAfterSeconds: result.retryAfterSeconds })
        if (result.kind === 'overloaded') throw new ApiError('OVERLOADED', 'the edge is at its buffer limit; retry shortly', { retryAfterSeconds: 1 })
        if (result.kind === 'loads_behind')
          throw new ApiError('STORAGE_UNAVAILABLE', 'this batch repeats events of a session that sat idle, which are checked against stored events once every edge has caught up with its loads; retry the same batch', {
            retryAfterSeconds: result.retryAfterSeconds,
          })
        throw new ApiError('STORAGE_UNAVAILABLE', 'some events of this batch are still being stored by an earlier attempt; retry the same batch', { retryAfterSeconds: result.retryAfterSeconds })
      }
      // Only what grows (the series start at 0 with the edge): each call hashes its labels.
      if (result.accepted > 0) metrics.eventsTotal.inc(ACCEPTED, result.accepted)
      if (result.duplicates > 0) metrics.eventsTotal.inc(DUPLICATE, result.duplicates)
      for (const r of result.rejected) metrics.eventsTotal.inc({ outcome: 'rejected', reason: r.reason })
      // A session that sent its end sends no more but a retry: its token need not stay verified
      // in memory (bench:ingest over 180 s: peak RSS 1,006 / 1,012 MiB against 1,215 / 1,233 with
      // the tokens of ended sessions kept to the cap; test/bench/HISTORY.md).
      if (ends) services.verifyPlaybackToken.forget(c.get('token'))
      return c.json(result, 200)
    },
  )

  return {
    app,
    /**
     * For the server's front, before the request reaches any app: the answer to a batch the edge
     * would refuse at once (all INGEST_MAX_IN_PROGRESS places taken and INGEST_MAX_WAITING
     * batches waiting), or undefined. Such a batch gets the 503 OVERLOADED the route would give
     * it, with Retry-After, for a fraction of the route's work: under an overload the refusals
     * are as many as the players retrying, and through the route each cost the edge's thread
     * about as much as a batch taken in (test/bench/HISTORY.md, thirty-first session). A batch
     * with a bad token gets it too, and its 401 once it is let in.
     */
    shed: shedAnswer,
    writer,
    /** New batches get 503 from now on. */
    stopAccepting(): void {
      accepting = false
    },
    get accepting(): boolean {
      return accepting
    },
    loader,
    /** What the edge holds not yet in ClickHouse: rows, and bytes of their text (see BUFFER_MAX_ROWS, BUFFER_MAX_BYTES). */
    buffered: {
      rows: () => writer.bufferedRows + loader.backlogRows,
      bytes: () => writer.bufferedBytes + loader.backlogBytes,
    },
    /**
     * Logs everything buffered and loads it into ClickHouse; with a timeout, stops the
     * loader when it runs out (shutdown: what is left stays in the log for the next start).
     * Resolves to whether everything was loaded.
     */
    async flush(timeoutMs?: number): Promise<boolean> {
      await writer.flush()
      return loader.drain(timeoutMs, timeoutMs !== undefined)
    },
    repair,
    /** Publishes this edge's oldest entry not yet loaded, for the other edges (every second, see LoadWatch). */
    publishLoads: () => loads.publish(),
    /** Takes this edge off the published list once it has stopped with nothing left to load. */
    async retireLoads(): Promise<void> {
      if (wal.oldestMs() === undefined) await loads.retire()
    },
    /** Closes the edge's own Redis client (Bun's; ioredis is the services'). */
    close(): void {
      fast?.close()
    },
    /** Before serving: drops torn log entries and finishes the flushes a crash cut short. */
    async recover(): Promise<number> {
      wal.removeTorn()
      return repair()
    },
  }
}

export type Edge = ReturnType<typeof createEdge>

const EVENTS_PATH = '/v1/events'

/** The path of a request's URL as Bun gives it (absolute: scheme, host, path, query). */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  if (start < 0) return '/'
  const end = url.indexOf('?', start)
  return end < 0 ? url.slice(start) : url.slice(start, end)
}

const ADMISSION_FULL = 'the edge is taking in as many batches as it can at once; retry shortly'
/**
 * The answer to a batch shed at the front: the route's refusal, but Retry-After 2 (a full
 * queue means a sustained overload). One error for all: an Error's stack is taken when it is made.
 */
const SHED = new ApiError('OVERLOADED', ADMISSION_FULL, { retryAfterSeconds: 2 })

/** The request id the client sent, if it is one the root app's request-id middleware would keep (hono/request-id's rule); else a new one. */
function shedRequestId(sent: string | null): string {
  return sent && sent.length <= 255 && !/[^\w\-=]/.test(sent) ? sent : crypto.randomUUID()
}

/** The client address: the socket's, or the first X-Forwarded-For hop behind a trusted proxy. */
export function clientIp(req: Request, env: EdgeBindings | undefined, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers.get('x-forwarded-for')?.split(',')[0]?.trim()
    if (forwarded && /^[0-9a-fA-F:.]{2,45}$/.test(forwarded)) return forwarded
  }
  return env?.ip ?? 'unknown'
}

/** An item of a batch that is an `end` event (valid or not: either way the player says the session is over). */
const isEnd = (item: unknown) => typeof item === 'object' && item !== null && (item as { type?: unknown }).type === 'end'
