import type { OpenAPIV3_1 } from 'openapi-types'
import { z } from 'zod'
import { eventSchema, MAX_BODY_BYTES, MAX_EVENTS_PER_BATCH } from './events/schema.ts'

const problemRef = { $ref: '#/components/schemas/Problem' }
const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: problemRef } } })

const responseSchema = z.object({
  accepted: z.number().int().describe('Events stored by this request (counted or not)'),
  duplicates: z.number().int().describe('Events already stored by an earlier request (retries)'),
  rejected: z.array(z.object({ index: z.number().int(), reason: z.string(), detail: z.string().optional() })).describe('Events refused, by position in the batch'),
})

/**
 * The edge's routes for `/openapi.json`, from the same zod schemas that validate
 * requests (io: 'input' describes what clients send).
 */
export function ingestOpenApi(): { paths: OpenAPIV3_1.PathsObject; schemas: Record<string, OpenAPIV3_1.SchemaObject> } {
  const event = z.toJSONSchema(eventSchema, { io: 'input', unrepresentable: 'any' })
  return {
    schemas: {
      PlaybackEvent: event as OpenAPIV3_1.SchemaObject,
      IngestResult: z.toJSONSchema(responseSchema) as OpenAPIV3_1.SchemaObject,
    },
    paths: {
      '/v1/events': {
        post: {
          tags: ['ingest'],
          summary: 'Send playback events',
          description:
            `At most ${MAX_EVENTS_PER_BATCH} events and ${MAX_BODY_BYTES} bytes per request, with the playback token from POST /v1/videos/{id}/play. ` +
            'Video, viewer and session come from the token. A 200 comes only after the accepted events are stored; retry any other answer with the same batch (event ids make retries safe).',
          security: [{ playbackToken: [] }],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { type: 'object', required: ['events'], properties: { events: { type: 'array', minItems: 1, maxItems: MAX_EVENTS_PER_BATCH, items: { $ref: '#/components/schemas/PlaybackEvent' } } } },
              },
            },
          },
          responses: {
            200: { description: 'Stored (valid events are accepted even when others are rejected)', content: { 'application/json': { schema: { $ref: '#/components/schemas/IngestResult' } } } },
            400: problemResponse('Malformed envelope'),
            401: problemResponse('Missing, invalid or expired playback token'),
            413: problemResponse('Body over 1 MiB'),
            415: problemResponse('Content-Type is not application/json'),
            429: problemResponse('Rate limited (Retry-After)'),
            503: problemResponse('Storage unavailable, edge overloaded or shutting down, or old events of an idle session to check while some edge is behind with its loads (Retry-After); retry the same batch'),
          },
        },
      },
      '/healthz': { get: { tags: ['operations'], summary: 'Liveness', responses: { 200: { description: 'Serving' } } } },
      '/readyz': { get: { tags: ['operations'], summary: 'Readiness: ClickHouse and a Redis script round trip', responses: { 200: { description: 'Ready' }, 503: { description: 'Not ready (details in the body)' } } } },
      '/metrics': { get: { tags: ['operations'], summary: 'Prometheus metrics', responses: { 200: { description: 'Text exposition format' } } } },
    },
  }
}
