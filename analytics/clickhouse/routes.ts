import type { DataFormat } from '@clickhouse/client'
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { describeRoute } from 'hono-openapi'
import { ApiError, type ErrorCode } from '../../lib/errors.ts'
import { verifyAccessToken } from '../auth/access-token.ts'
import { hasRole } from '../auth/middleware.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { checkReadOnlySql } from './sql-guard.ts'

const MAX_QUERY_BYTES = 256 * 1024

/** URL parameters that only steer the HTTP transport of ClickHouse: accepted and ignored. */
const TRANSPORT_PARAMS = new Set(['query_id', 'wait_end_of_query', 'send_progress_in_http_headers', 'http_headers_progress_interval_ms', 'enable_http_compression', 'http_response_buffer_size', 'buffer_size', 'compress', 'decompress', 'user', 'password'])

const FORMAT_NAME = /^[A-Za-z][A-Za-z0-9_]*$/

function contentType(format: string): string {
  const f = format.toLowerCase()
  if (/^(jsoneachrow|jsonlines|ndjson|jsoncompacteachrow|jsonstringseachrow|jsoncompactstringseachrow)/.test(f)) return 'application/x-ndjson; charset=UTF-8'
  if (f.startsWith('json')) return 'application/json; charset=UTF-8'
  if (f.startsWith('csv')) return 'text/csv; charset=UTF-8; header=present'
  if (f.startsWith('tabseparated') || f.startsWith('tsv')) return 'text/tab-separated-values; charset=UTF-8'
  if (/^(native|rowbinary|parquet|arrow|orc|avro|msgpack|protobuf|capnproto)/.test(f)) return 'application/octet-stream'
  return 'text/plain; charset=UTF-8'
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '0': '\0' }

/** `param_<name>` values arrive escaped as ClickHouse's HTTP interface expects them (`\'`, `\\`, `\t`, ...). */
function unescapeParam(value: string): string {
  return value.replace(/\\(.)/gs, (_, ch: string) => ESCAPES[ch] ?? ch)
}

/** The access token from `Authorization: Bearer`, or the password of Basic auth / X-ClickHouse-Key (how ClickHouse clients send credentials). */
function credential(c: Context): string | undefined {
  const header = c.req.header('authorization')
  if (header && /^bearer\s/i.test(header)) return header.replace(/^bearer\s+/i, '').trim()
  if (header && /^basic\s/i.test(header)) {
    const decoded = Buffer.from(header.replace(/^basic\s+/i, ''), 'base64').toString('utf8')
    const i = decoded.indexOf(':')
    return i >= 0 ? decoded.slice(i + 1) : undefined
  }
  return c.req.header('x-clickhouse-key') ?? undefined
}

/** ClickHouse error codes that are the caller's doing, and what they become. */
function mapEngineError(err: unknown): ApiError | undefined {
  if (!(err instanceof Error)) return undefined
  const code = 'code' in err && typeof err.code === 'string' && /^\d+$/.test(err.code) ? Number(err.code) : Number(/Code: (\d+)/.exec(err.message)?.[1] ?? NaN)
  if (Number.isNaN(code)) return undefined
  const message = err.message.replace(/\s+/g, ' ').trim()
  const status: ErrorCode = code === 164 ? 'FORBIDDEN' : code === 159 || code === 396 || code === 158 || code === 241 ? 'UNPROCESSABLE' : 'BAD_REQUEST'
  return new ApiError(status, `ClickHouse refused the query (code ${code}): ${message}`, { fields: { clickhouse_code: code } })
}

/**
 * `/clickhouse`: read-only SQL for analysts (and admins), shaped like ClickHouse's
 * HTTP interface so its clients can point here (`pathname: '/clickhouse'`). The
 * query comes from `?query=` and/or the body, with a FORMAT clause or
 * `default_format`; query parameters as `param_<name>`. Read-only is enforced by the
 * engine session (see analyst-client.ts), with limits on time and result size.
 */
export function clickhouseRoutes(deps: AnalyticsDeps) {
  const { services } = deps
  const app = new Hono<AnalyticsEnv>()

  app.get('/clickhouse/ping', describeRoute({ tags: ['analysts'], security: [], summary: 'Liveness, as ClickHouse answers /ping' }), (c) => c.text('Ok.\n'))

  const run = async (c: Context<AnalyticsEnv>) => {
    const token = credential(c)
    if (!token) throw new ApiError('UNAUTHORIZED', 'send an access token of a user with role analyst or admin: Authorization: Bearer <token>, or as the password of Basic auth')
    const verified = await verifyAccessToken(deps.access, token)
    if (!verified.ok) throw new ApiError('INVALID_TOKEN', verified.reason)
    if (!hasRole(verified.principal, 'analyst', 'admin')) throw new ApiError('FORBIDDEN', 'this needs role analyst or admin')

    const url = new URL(c.req.url)
    const queryParams: Record<string, string> = {}
    let defaultFormat = 'TabSeparated'
    for (const [name, value] of url.searchParams) {
      if (name === 'query') continue
      if (name.startsWith('param_')) queryParams[name.slice(6)] = unescapeParam(value)
      else if (name === 'default_format') {
        if (!FORMAT_NAME.test(value)) throw new ApiError('BAD_REQUEST', 'default_format is not a format name')
        defaultFormat = value
      } else if (name === 'database') {
        if (value !== services.settings.CLICKHOUSE_DATABASE) throw new ApiError('FORBIDDEN', `only database ${services.settings.CLICKHOUSE_DATABASE} can be queried here`)
      } else if (name === 'session_id' || name === 'session_check' || name === 'session_timeout') throw new ApiError('BAD_REQUEST', 'sessions are not supported: send one self-contained query per request')
      else if (!TRANSPORT_PARAMS.has(name)) throw new ApiError('FORBIDDEN', `setting ${name} cannot be changed here: the engine runs analyst queries read-only with fixed limits`)
    }
    const fromUrl = url.searchParams.get('query') ?? ''
    const fromBody = c.req.method === 'POST' ? await c.req.text() : ''
    const sql = [fromUrl, fromBody].filter((s) => s.trim() !== '').join('\n')
    if (Buffer.byteLength(sql) > MAX_QUERY_BYTES) throw new ApiError('PAYLOAD_TOO_LARGE', `a query may have at most ${MAX_QUERY_BYTES} bytes`)
    const checked = checkReadOnlySql(sql)
    if (!checked.ok) throw new ApiError('FORBIDDEN', checked.reason)

    const format = checked.format ?? defaultFormat
    const ch = deps.analystClickHouse()
    let body: Buffer
    try {
      const result = await ch.exec({
        query: checked.query,
        query_params: Object.keys(queryParams).length > 0 ? queryParams : undefined,
        // A format name the engine does not know is its error to report.
        clickhouse_settings: checked.format ? {} : { default_format: format as DataFormat },
      })
      const chunks: Buffer[] = []
      for await (const chunk of result.stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array))
      body = Buffer.concat(chunks)
    } catch (err) {
      const mapped = mapEngineError(err)
      if (mapped) throw mapped
      services.log.error('analyst query failed', { request_id: c.get('requestId'), error: err instanceof Error ? err.message : String(err) })
      throw new ApiError('STORAGE_UNAVAILABLE', 'ClickHouse is not available', { retryAfterSeconds: 5 })
    }
    services.log.info('analyst query', { request_id: c.get('requestId'), user_id: verified.principal.userId, bytes: body.length })
    return c.body(new Uint8Array(body), 200, { 'content-type': contentType(format), 'x-clickhouse-format': format })
  }

  const doc = describeRoute({
    tags: ['analysts'],
    summary: 'Read-only SQL in the shape of ClickHouse’s HTTP interface (roles analyst, admin)',
    description: 'Query in `?query=` and/or the body; `FORMAT` clause or `default_format` (default TabSeparated); `param_<name>` for `{name:Type}` parameters. Writes, DDL, SET, several statements and settings in the URL are refused.',
  })
  app.get('/clickhouse', doc, run)
  app.post('/clickhouse', doc, bodyLimit({ maxSize: MAX_QUERY_BYTES + 1024, onError: () => { throw new ApiError('PAYLOAD_TOO_LARGE', `a query may have at most ${MAX_QUERY_BYTES} bytes`) } }), run)
  return app
}
