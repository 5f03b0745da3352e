import type { Context, ErrorHandler, NotFoundHandler } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

/** Every error the APIs answer with, and its HTTP status. */
export const errorCodes = {
  BAD_REQUEST: 400,
  INVALID_BODY: 400,
  INVALID_QUERY: 400,
  UNAUTHORIZED: 401,
  INVALID_TOKEN: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  NOT_CONFIGURED: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  STORAGE_UNAVAILABLE: 503,
  OVERLOADED: 503,
  SHUTTING_DOWN: 503,
} as const satisfies Record<string, ContentfulStatusCode>

export type ErrorCode = keyof typeof errorCodes

/**
 * An expected failure, answered as `application/problem+json` (RFC 9457) by `onError`.
 *
 * @example
 * throw new ApiError('NOT_FOUND', 'no video with id v1')
 */
export class ApiError extends Error {
  override name = 'ApiError'
  readonly status: ContentfulStatusCode
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: { retryAfterSeconds?: number; fields?: Record<string, unknown> } = {},
  ) {
    super(detail)
    this.status = errorCodes[code]
  }
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

/** Builds the problem+json response for an error code. */
export function problem(c: Context, err: ApiError): Response {
  return problemResponse(err, (c.get('requestId' as never) as string | undefined) ?? '')
}

/** The problem+json response for an error, answering the request `requestId` (outside a route too: see shed in ingest/app.ts). */
export function problemResponse(err: ApiError, requestId: string): Response {
  const body = {
    type: `https://errors.creator-settlement.dev/${err.code.toLowerCase().replaceAll('_', '-')}`,
    title: titles[err.status] ?? 'Error',
    status: err.status,
    detail: err.detail,
    code: err.code,
    request_id: requestId,
    ...err.extra.fields,
  }
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' }
  // As on every other answer (the request-id middleware's header, which a new Response does not carry).
  if (requestId) headers['x-request-id'] = requestId
  if (err.extra.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.extra.retryAfterSeconds)
  return new Response(JSON.stringify(body), { status: err.status, headers })
}

/** The apps' `onError`: expected failures become problems, unexpected ones are logged once with the request id. */
export const onError: ErrorHandler = (err, c) => {
  if (err instanceof ApiError) return problem(c, err)
  // Hono's own HTTPException (body limit, bad JSON from validators, ...).
  if ('getResponse' in err && typeof err.getResponse === 'function' && 'status' in err && typeof err.status === 'number') {
    const status = err.status
    const code: ErrorCode = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 401 ? 'UNAUTHORIZED' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL'
    return problem(c, new ApiError(code, err.message || titles[status] || 'error'))
  }
  const requestId = (c.get('requestId' as never) as string | undefined) ?? ''
  console.error(JSON.stringify({ level: 'error', msg: 'unhandled error', request_id: requestId, path: c.req.path, error: String(err), stack: err.stack }))
  return problem(c, new ApiError('INTERNAL', 'internal error; quote the request id when reporting it'))
}

export const notFound: NotFoundHandler = (c) => problem(c, new ApiError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`))
