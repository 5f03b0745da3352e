import { spawn } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { serve, type ServerType } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServices, type TestServices } from '../test/harness/services.ts'
import { clockAt, putViews } from '../test/settlement/fixtures.ts'
import { createJobsApp, internalTokenMatches, type SettleStreamEvent } from './http.ts'

const TOKEN = 'internal-token-for-tests-0123456789'
const ROOT = resolve(import.meta.dirname, '..')
let s: TestServices
let app: ReturnType<typeof createJobsApp>

const post = (body: unknown, token = TOKEN) =>
  app.request('/internal/jobs/settle', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })

async function events(res: Response): Promise<SettleStreamEvent[]> {
  return (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as SettleStreamEvent)
}

beforeAll(async () => {
  s = await startTestServices({ LOG_LEVEL: 'error' })
  await putViews(s.ch, { day: '2024-03-01', video: 'v1', views: 12 })
  await putViews(s.ch, { day: '2024-03-02', video: 'v1', views: 3 })
  app = createJobsApp(s, { internalToken: TOKEN, settle: { now: clockAt('2024-03-03T09:00:00+09:00') } })
})
afterAll(() => s?.stopAll())

describe('POST /internal/jobs/settle', () => {
  it('refuses a request without the internal token', async () => {
    expect((await app.request('/internal/jobs/settle', { method: 'POST', body: '{}' })).status).toBe(401)
    const wrong = await post({ date: '2024-03-01' }, 'not-the-token-but-long-enough')
    expect(wrong.status).toBe(401)
    expect(await wrong.json()).toMatchObject({ code: 'UNAUTHORIZED' })
    expect(internalTokenMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true)
    expect(internalTokenMatches(TOKEN, TOKEN)).toBe(false)
  })

  it('answers a malformed request with a problem', async () => {
    for (const body of [{ date: '1 March' }, { date: '2024-03-01', extra: 1 }, 'not json', {}]) {
      const res = await post(body)
      expect(res.status, JSON.stringify(body)).toBe(400)
      expect(res.headers.get('content-type')).toContain('application/problem+json')
    }
  })

  it('refuses a future day before streaming anything', async () => {
    const res = await post({ date: '2024-03-03' })
    expect(res.status).toBe(422)
    expect(await res.json()).toMatchObject({ code: 'UNPROCESSABLE', settlement_code: 'FUTURE_DAY', detail: expect.stringContaining('has not ended yet') })
  })

  it('streams each settled day, then done', async () => {
    const res = await post({ from: '2024-03-01', to: '2024-03-02' })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('application/x-ndjson')
    const got = await events(res)
    expect(got.filter((e) => e.type === 'day').map((e) => e.type === 'day' && [e.day.day, e.day.views, e.day.video_revenue_krw])).toEqual([
      ['2024-03-01', 12, 12],
      ['2024-03-02', 3, 3],
    ])
    expect(got.at(-1)).toEqual({ type: 'done', days: 2, remaining: 0 })
  })

  it('lists the recorded runs', async () => {
    const res = await app.request('/internal/jobs/settlement/runs?from=2024-03-01&to=2024-03-31', { headers: { authorization: `Bearer ${TOKEN}` } })
    const body = (await res.json()) as { runs: Array<{ day: string; state: string }> }
    expect(body.runs.map((r) => [r.day, r.state])).toEqual([
      ['2024-03-02', 'committed'],
      ['2024-03-01', 'committed'],
    ])
  })
})

describe('npm run settle while the server owns the data folder', () => {
  let server: ServerType
  let runDir: string

  beforeAll(async () => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
    await new Promise<void>((r) => server.once('listening', () => r()))
    runDir = join(s.testCh.dataDir, 'run')
    mkdirSync(runDir, { recursive: true })
    writeFileSync(join(runDir, 'server.json'), JSON.stringify({ pid: process.pid, port: (server.address() as AddressInfo).port, internalToken: TOKEN }))
  })
  afterAll(() => {
    server?.close()
    rmSync(runDir, { recursive: true, force: true })
  })

  function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
    const env = { ...process.env, DATA_DIR: s.testCh.dataDir, HOST: '127.0.0.1', REDIS_URL: s.testRedis.url, LOG_LEVEL: 'error' }
    const child = spawn(join(ROOT, 'node_modules/.bin/bun'), ['jobs/settle-cli.ts', ...args], { cwd: ROOT, env })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    return new Promise((r) => child.once('exit', (code) => r({ code, out, err })))
  }

  it('hands the run to the server instead of opening the engine', async () => {
    const r = await cli(['--date', '2024-03-02'])
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/^2024-03-02 provisional run \d+: 1 videos, 3 views 3 KRW; 0 impressions on 0 ad lines 0 KRW; total 3 KRW \[rate card 1 graduated, checksum [0-9a-f]+, same as before/)
  })

  it('prints the refusal the server answers with', async () => {
    const r = await cli(['--date', '2024-03-01', '--finalize'])
    expect(r.code).toBe(1)
    expect(r.err).toContain('stays provisional until its lateness window closes')
  })
})
