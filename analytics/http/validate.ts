import type { StandardSchemaV1 } from '@standard-schema/spec'
import type { ValidationTargets } from 'hono'
import { validator } from 'hono-openapi'
import { ApiError, type ErrorCode } from '../../lib/errors.ts'

const codeFor: Partial<Record<keyof ValidationTargets, ErrorCode>> = { json: 'INVALID_BODY', form: 'INVALID_BODY', query: 'INVALID_QUERY' }

function describeIssues(issues: readonly StandardSchemaV1.Issue[]): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      const path = (i.path ?? []).map((p) => (typeof p === 'object' ? String(p.key) : String(p))).join('.')
      return path ? `${path}: ${i.message}` : i.message
    })
    .join('; ')
}

/**
 * Validates one part of the request with a zod schema and documents it in the
 * OpenAPI document; a failure becomes a problem+json 400 naming the fields.
 *
 * @example
 * app.get('/videos/:id/stats', v('query', statsQuery), (c) => c.json(c.req.valid('query')))
 */
export function v<Schema extends StandardSchemaV1, Target extends keyof ValidationTargets>(target: Target, schema: Schema) {
  return validator(target, schema, (result) => {
    if (!result.success) throw new ApiError(codeFor[target] ?? 'BAD_REQUEST', `invalid ${target}: ${describeIssues(result.error)}`)
  })
}
