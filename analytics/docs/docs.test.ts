import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAnalyticsApi, type TestApi } from '../../test/analytics/helpers.ts'

let api: TestApi
beforeAll(async () => {
  api = await startAnalyticsApi()
})
afterAll(() => api?.stop())

type Spec = { openapi: string; paths: Record<string, Record<string, { parameters?: { name: string; in: string; required?: boolean; schema?: unknown }[]; requestBody?: unknown; summary?: string }>> }

describe('OpenAPI', () => {
  it('describes every analytics route, with parameters from the zod schemas', async () => {
    const res = await api.request('/openapi.json')
    expect(res.status).toBe(200)
    const spec = (await res.json()) as Spec
    expect(spec.openapi).toBe('3.1.0')
    const routes = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    for (const r of [
      'POST /v1/auth/dev-login',
      'GET /v1/auth/{provider}/login',
      'GET /v1/auth/{provider}/callback',
      'POST /v1/auth/refresh',
      'POST /v1/auth/logout',
      'GET /v1/me',
      'POST /v1/me/creator',
      'POST /v1/videos',
      'GET /v1/me/videos',
      'GET /v1/videos/{id}',
      'POST /v1/videos/{id}/play',
      'GET /v1/videos/{id}/resume',
      'GET /v1/videos/{id}/stats',
      'GET /v1/me/top',
      'GET /v1/top',
      'GET /v1/me/settlements',
      'GET /v1/me/settlements/videos',
      'GET /v1/me/settlements/ads',
      'GET /v1/videos/{id}/settlements',
      'GET /v1/videos/{id}/settlements/ads',
      'GET /v1/admin/settlements',
      'GET /v1/ads',
      'POST /v1/ads',
      'GET /v1/ads/{id}',
      'PATCH /v1/ads/{id}',
      'DELETE /v1/ads/{id}',
      'POST /v1/admin/jobs/ad-assignment/runs',
      'GET /v1/admin/jobs/settlement/runs',
      'POST /v1/admin/jobs/settlement/runs',
      'GET /v1/admin/rate-cards',
      'POST /v1/admin/rate-cards',
      'GET /clickhouse',
      'POST /clickhouse',
    ]) {
      expect(routes, r).toContain(r)
    }
    const stats = spec.paths['/v1/videos/{id}/stats']!.get!
    expect(stats.parameters?.map((p) => `${p.in}:${p.name}`)).toEqual(expect.arrayContaining(['path:id', 'query:grain', 'query:from', 'query:to', 'query:format']))
    expect(spec.paths['/v1/videos']!.post!.requestBody).toBeDefined()
  })

  it('serves a docs page over it', async () => {
    const res = await api.request('/docs')
    expect(res.headers.get('content-type')).toContain('text/html')
    expect(await res.text()).toContain('/openapi.json')
  })
})
