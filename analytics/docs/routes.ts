import type { Hono } from 'hono'
import { Hono as HonoApp } from 'hono'
import { generateSpecs } from 'hono-openapi'
import type { OpenAPIV3_1 } from 'openapi-types'
import type { AnalyticsEnv } from '../context.ts'

export type OpenApiExtras = {
  /** Paths served by other apps of the process (e.g. the ingest edge's `/v1/events`), merged in as given. */
  paths?: OpenAPIV3_1.PathsObject
  /** Extra component schemas those paths refer to. */
  schemas?: Record<string, OpenAPIV3_1.SchemaObject>
}

const problem: OpenAPIV3_1.SchemaObject = {
  type: 'object',
  description: 'RFC 9457 problem details; every error of the API has this shape (application/problem+json).',
  required: ['type', 'title', 'status', 'detail', 'code', 'request_id'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string', description: 'What went wrong, for a human' },
    code: { type: 'string', description: 'Stable error code, e.g. NOT_FOUND, INVALID_QUERY, RATE_LIMITED' },
    request_id: { type: 'string' },
  },
}

const docsPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Creator settlement API</title><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<noscript>The API reference needs JavaScript; the raw OpenAPI 3.1 document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script id="api-reference" data-url="/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1"></script>
</body>
</html>`

/**
 * `/openapi.json` (OpenAPI 3.1, generated from the same zod schemas that validate
 * requests) and `/docs` (a reference page over it). The document is built once, on
 * first request, from `api`: every route registered on it by then is described.
 */
export function docsRoutes(api: Hono<AnalyticsEnv>, extras: OpenApiExtras = {}) {
  let spec: Promise<unknown> | undefined
  const build = async () => {
    const generated = await generateSpecs(api, {
      documentation: {
        openapi: '3.1.0',
        info: {
          title: 'Creator settlement analytics API',
          version: '1',
          description: 'Login, videos and ads, playback sessions, statistics, top videos, settlement and read-only SQL. Errors are application/problem+json. Table results also come as CSV with ?format=csv.',
        },
        components: {
          securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from /v1/auth/dev-login, /v1/auth/{provider}/callback or /v1/auth/refresh' } },
          schemas: { Problem: problem, ...extras.schemas },
        },
        security: [{ bearerAuth: [] }],
      },
      defaultValidationErrorResponse: { description: 'Invalid request', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
      defaultOptions: { ALL: { responses: { default: { description: 'Error', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } } } } },
    })
    return { ...generated, paths: { ...generated.paths, ...extras.paths } }
  }
  return new HonoApp<AnalyticsEnv>()
    .get('/openapi.json', async (c) => c.json(await (spec ??= build())))
    .get('/docs', (c) => c.html(docsPage))
}
