import type { AddressInfo } from 'node:net'
import { createClient } from '@clickhouse/client'
import { serve, type ServerType } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rows } from '../../test/harness/engines.ts'
import { ADMIN_EMAIL, ANALYST_EMAIL, startAnalyticsApi, type Session, type TestApi } from '../../test/analytics/helpers.ts'
import { insertEvents } from '../../test/analytics/events.ts'
import { loadAnalyticsSettings } from '../settings.ts'
import { createAnalystClickHouse } from './analyst-client.ts'

let api: TestApi
let analyst: Session
let admin: Session
let creator: Session
let server: ServerType
let port: number

beforeAll(async () => {
  api = await startAnalyticsApi({ ANALYST_MAX_RESULT_ROWS: '100', ANALYST_MAX_MEMORY_BYTES: String(64 * 1024 ** 2) })
  ;[analyst, admin, creator] = await Promise.all([api.login('ana', { email: ANALYST_EMAIL }), api.login('adm', { email: ADMIN_EMAIL }), api.login('cre', { creator: true })])
  await insertEvents(api.s.ch, [{ type: 'play', video_id: 'v_sql', creator_id: 'c_sql', viewer_id: 'x', at: '2026-03-02 01:00:00' }])
  server = serve({ fetch: api.app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  port = (server.address() as AddressInfo).port
})
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve))
  await api?.stop()
})

const sql = (query: string, init: { token?: string; url?: string; method?: string } = {}) =>
  init.method === 'GET'
    ? api.request(`/clickhouse?query=${encodeURIComponent(query)}${init.url ?? ''}`, { token: init.token ?? analyst.token })
    : api.request(`/clickhouse${init.url ?? ''}`, { method: 'POST', body: query, token: init.token ?? analyst.token })

describe('/clickhouse', () => {
  it('runs a SELECT from the URL or the body, in TabSeparated by default', async () => {
    const get = await sql('SELECT 1 AS one', { method: 'GET' })
    expect(get.status).toBe(200)
    expect(await get.text()).toBe('1\n')
    const post = await sql("SELECT video_id, views FROM video_stats_per_day WHERE video_id = 'v_sql' FORMAT JSONEachRow")
    expect(post.headers.get('content-type')).toContain('application/x-ndjson')
    expect(JSON.parse((await post.text()).trim())).toEqual({ video_id: 'v_sql', views: 1 })
  })

  it('honours default_format and param_ query parameters', async () => {
    const res = await sql('SELECT {n:UInt32} * 2 AS doubled', { url: '?default_format=JSON&param_n=21' })
    expect(res.headers.get('x-clickhouse-format')).toBe('JSON')
    expect(((await res.json()) as { data: unknown[] }).data).toEqual([{ doubled: 42 }])
  })

  it('is for analysts and admins only', async () => {
    expect((await api.request('/clickhouse?query=SELECT%201')).status).toBe(401)
    const res = await sql('SELECT 1', { token: creator.token })
    expect(res.status).toBe(403)
    expect(res.headers.get('content-type')).toContain('application/problem+json')
    expect((await sql('SELECT 1', { token: admin.token })).status).toBe(200)
    expect((await sql('SELECT 1', { token: 'junk' })).status).toBe(401)
  })

  it('refuses writes, DDL, SET and multi-statements with a clear reason', async () => {
    for (const q of ["INSERT INTO videos (video_id) VALUES ('x')", 'ALTER TABLE videos DELETE WHERE 1', 'DROP TABLE raw_events', 'SET readonly = 0', 'SELECT 1; DROP TABLE raw_events', 'CREATE TABLE t (a UInt8) ENGINE = Memory']) {
      const res = await sql(q)
      expect(res.status, q).toBe(403)
      expect(await res.json()).toMatchObject({ code: 'FORBIDDEN', detail: expect.stringMatching(/refused/) })
    }
    expect(await rows(api.s.ch, 'SELECT count() AS n FROM raw_events')).toEqual([{ n: '1' }])
  })

  it('refuses settings in the URL and lets the engine refuse them in the query', async () => {
    for (const param of ['readonly=0', 'max_result_rows=0', 'allow_ddl=1', 'max_execution_time=100000']) {
      const res = await sql('SELECT 1', { url: `?${param}` })
      expect(res.status, param).toBe(403)
      expect(((await res.json()) as { detail: string }).detail).toMatch(/cannot be changed/)
    }
    const inQuery = await sql('SELECT 1 SETTINGS max_result_rows = 0')
    expect(inQuery.status).toBe(403)
    expect(await inQuery.json()).toMatchObject({ clickhouse_code: 164 })
  })

  it('keeps the limits: too many result rows is an error, not a partial result', async () => {
    const res = await sql('SELECT number FROM numbers(1000)')
    expect(res.status).toBe(422)
    expect(((await res.json()) as { detail: string }).detail).toMatch(/Limit for result exceeded/)
  })

  it("bounds a query's memory: a GROUP BY past a quarter of it goes to disk and answers, what cannot is refused (422)", async () => {
    // 2M groups: more than the 64 MiB bound in memory, as the writing session (no bound of its own) shows when given it.
    const groups = 'SELECT count() FROM (SELECT number % 2000000 AS k, count() FROM numbers(4000000) GROUP BY k)'
    await expect(api.s.ch.query({ query: groups, clickhouse_settings: { max_memory_usage: String(64 * 1024 ** 2) } }).then((r) => r.text())).rejects.toThrow(/memory limit/i)
    const spilled = await sql(groups)
    expect(spilled.status).toBe(200)
    expect((await spilled.text()).trim()).toBe('2000000')
    // One array of 20M numbers cannot go to disk.
    const refused = await sql('SELECT length(groupArray(number)) FROM numbers(20000000)')
    expect(refused.status).toBe(422)
    expect(await refused.json()).toMatchObject({ clickhouse_code: 241, detail: expect.stringMatching(/memory limit/i) })
  })

  it('enforces read-only in the engine session itself, and the writing session is unaffected', async () => {
    // Straight to the kind of engine session behind the endpoint, past the SQL guard.
    const engine = createAnalystClickHouse(api.s.settings, loadAnalyticsSettings({}))
    try {
      await expect(engine.command({ query: "INSERT INTO videos (video_id) VALUES ('sneaky')" })).rejects.toThrow(/readonly/i)
      await expect(engine.command({ query: 'SET readonly = 0' })).rejects.toThrow(/readonly/i)
      await expect(engine.command({ query: "SELECT * FROM file('/etc/passwd', 'LineAsString')" })).rejects.toThrow(/readonly/i)
    } finally {
      await engine.close()
    }
    await insertEvents(api.s.ch, [{ type: 'play', video_id: 'v_sql2', creator_id: 'c_sql', viewer_id: 'y', at: '2026-03-02 01:00:00' }])
    expect(await rows(api.s.ch, 'SELECT count() AS n FROM raw_events')).toEqual([{ n: '2' }])
    expect(await rows(api.s.ch, "SELECT count() AS n FROM videos WHERE video_id = 'sneaky'")).toEqual([{ n: '0' }])
  })

  it('serves a ClickHouse HTTP client pointed at it', async () => {
    const client = createClient({ url: `http://127.0.0.1:${port}`, pathname: '/clickhouse', username: 'analyst', password: analyst.token })
    try {
      const rs = await client.query({ query: 'SELECT video_id, sum(views) AS views FROM video_stats_per_day GROUP BY video_id ORDER BY video_id', format: 'JSONEachRow' })
      expect(await rs.json()).toEqual([
        { video_id: 'v_sql', views: 1 },
        { video_id: 'v_sql2', views: 1 },
      ])
      const params = await client.query({ query: 'SELECT {v:String} AS echoed', query_params: { v: "it's" }, format: 'JSONEachRow' })
      expect(await params.json()).toEqual([{ echoed: "it's" }])
      expect((await client.ping()).success).toBe(true)
      await expect(client.command({ query: 'DROP TABLE raw_events' })).rejects.toThrow(/refused/)
    } finally {
      await client.close()
    }
  })
})
