import { createHash, timingSafeEqual } from 'node:crypto'
import { Hono, type MiddlewareHandler } from 'hono'
import { stream } from 'hono/streaming'
import { z } from 'zod'
import { ApiError, onError } from '../lib/errors.ts'
import type { AppEnv, Services } from '../lib/services.ts'
import { SettlementError, settlementErrorCodes } from './settlement/errors.ts'
import { beginSettlement, type DayOutcome, type SettleOptions, type SettlementSession } from './settlement/job.ts'
import { settleRequestFrom } from './settlement/request.ts'
import { listRuns } from './settlement/runs.ts'

/**
 * One line of the NDJSON stream POST /internal/jobs/settle answers with once the run
 * has started: a line per day as it commits, heartbeats while a day takes long (so no
 * idle timeout cuts the connection), then `done` or `error`.
 */
export type SettleStreamEvent =
  | { type: 'day'; day: DayOutcome }
  | { type: 'heartbeat' }
  | { type: 'done'; days: number; remaining: number }
  | { type: 'error'; code: string; detail: string }

export type JobsAppOptions = {
  /** The bearer token `npm run settle` sends (DATA_DIR/run/server.json); compared in constant time. */
  internalToken: string
  /** Tests move the clock. */
  settle?: Pick<SettleOptions, 'now' | 'lockTtlMs'>
  heartbeatMs?: number
}

/** True when `header` is `Bearer <token>`; constant time in the token. */
export function internalTokenMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ') || token === '') return false
  const digest = (v: string) => createHash('sha256').update(v).digest()
  return timingSafeEqual(digest(header.slice('Bearer '.length)), digest(token))
}

function internalAuth(token: string): MiddlewareHandler<AppEnv> {
  if (token.length < 16) throw new Error('the internal token must be at least 16 characters')
  return async function internalAuth(c, next) {
    if (!internalTokenMatches(c.req.header('authorization'), token)) throw new ApiError('UNAUTHORIZED', 'internal job routes need the server\'s internal token')
    await next()
  }
}

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD')
const settleBody = z.strictObject({ date: day.optional(), from: day.optional(), to: day.optional(), finalize: z.boolean().optional(), dry_run: z.boolean().optional() })
const runsQuery = z.object({ from: day.optional(), to: day.optional(), limit: z.coerce.number().int().min(1).max(1000).optional() })

const toApiError = (err: SettlementError) => new ApiError(settlementErrorCodes[err.code], err.message, { fields: { settlement_code: err.code } })

/**
 * The jobs' internal routes, mounted by the server at the root. `npm run settle` hands
 * its run here when the server owns the embedded engine's data folder.
 *
 * - `POST /internal/jobs/settle` body `{ date | from & to, finalize?, dry_run? }`: refusals
 *   (bad, future or final day, lock held) are problems with a 4xx status; once the run
 *   starts, a 200 NDJSON stream of SettleStreamEvent.
 * - `GET /internal/jobs/settlement/runs?from=&to=&limit=`: recorded runs, newest first.
 *
 * @example
 * app.route('/', createJobsApp(services, { internalToken }))
 */
export function createJobsApp(services: Services, opts: JobsAppOptions): Hono<AppEnv> {
  const heartbeatMs = opts.heartbeatMs ?? 5_000
  const app = new Hono<AppEnv>()
  app.onError(onError)
  app.use('/internal/jobs/*', internalAuth(opts.internalToken))

  app.post('/internal/jobs/settle', async (c) => {
    const parsed = settleBody.safeParse(await c.req.json().catch(() => undefined))
    if (!parsed.success) throw new ApiError('INVALID_BODY', `expected { date | from & to (YYYY-MM-DD), finalize?, dry_run? }: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'} ${i.message}`).join('; ')}`)
    let session: SettlementSession
    try {
      const { dry_run: dryRun, ...rest } = parsed.data
      session = await beginSettlement(services, settleRequestFrom({ ...rest, dryRun }, 'http'), opts.settle)
    } catch (err) {
      throw err instanceof SettlementError ? toApiError(err) : err
    }
    c.header('content-type', 'application/x-ndjson; charset=utf-8')
    return stream(c, async (s) => {
      const write = (e: SettleStreamEvent) => s.write(`${JSON.stringify(e)}\n`)
      const heartbeat = setInterval(() => void write({ type: 'heartbeat' }).catch(() => {}), heartbeatMs)
      try {
        const result = await session.run((d) => void write({ type: 'day', day: d }).catch(() => {}))
        await write({ type: 'done', days: result.days.length, remaining: result.remaining })
      } catch (err) {
        const code = err instanceof SettlementError ? err.code : 'INTERNAL'
        if (!(err instanceof SettlementError)) services.log.error('settlement run failed', { error: err instanceof Error ? err.message : String(err) })
        await write({ type: 'error', code, detail: err instanceof Error ? err.message : String(err) })
      } finally {
        clearInterval(heartbeat)
        await session.close()
      }
    })
  })

  app.get('/internal/jobs/settlement/runs', async (c) => {
    const q = runsQuery.safeParse(c.req.query())
    if (!q.success) throw new ApiError('INVALID_QUERY', q.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; '))
    return c.json({ runs: await listRuns(services.ch, q.data) })
  })
  return app
}
