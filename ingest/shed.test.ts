import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadSettings } from '../lib/config.ts'
import { ev, startTestEdge, type TestEdge } from '../test/harness/edge.ts'
import { freePort, startTestRedis, tempDir, type TestRedis } from '../test/harness/engines.ts'
import { BUN, startServerProcess, testServerEnv, type ServerProcess } from '../test/harness/process.ts'
import { loadPlaybackKeys } from './tokens/keys.ts'
import { signPlaybackToken } from './tokens/playback.ts'

// One batch taken in at a time, each waiting a second for its flush; one more may wait for a place (up to 5 s).
let t: TestEdge
beforeAll(async () => {
  t = await startTestEdge({ INGEST_MAX_IN_PROGRESS: '1', INGEST_MAX_WAITING: '1', BUFFER_WAIT_MS: '5000', FLUSH_INTERVAL_MS: '1000' })
})
let redis: TestRedis | undefined
let server: ServerProcess | undefined
const dataDir = tempDir('cs-shed-')
afterAll(async () => {
  server?.kill('SIGKILL')
  await redis?.stop()
  rmSync(dataDir, { recursive: true, force: true })
  await t.stop()
})

const refused = async () => (await t.s.metrics.batchesRefused.get()).values[0]?.value ?? 0
const inProgress = async () => (await t.s.metrics.batchesInProgress.get()).values[0]?.value ?? 0

describe('a batch that would be refused at once is answered before anything else of it is done', () => {
  const request = (path: string, opts: { method?: string; requestId?: string } = {}) =>
    new Request(`http://edge.test${path}`, {
      method: opts.method ?? 'POST',
      // Neither the token nor the body is looked at: the answer is the same for any.
      headers: { authorization: 'Bearer not-a-token', 'content-type': 'text/plain', ...(opts.requestId ? { 'x-request-id': opts.requestId } : {}) },
      body: opts.method === 'GET' ? undefined : 'not json',
    })
  const http503 = async () => (await t.s.metrics.httpRequests.get()).values.find((v) => v.labels.route === '/v1/events' && v.labels.status === '503')?.value ?? 0

  it('answers 503 OVERLOADED with Retry-After once every place is taken and INGEST_MAX_WAITING batches wait, and nothing otherwise', async () => {
    const token = await t.token({ videoId: `v-${crypto.randomUUID().slice(0, 8)}` })
    expect(t.edge.shed(request('/v1/events'))).toBeUndefined()
    const first = t.post(token, [ev('play', { ts: Date.now() - 5_000 })], { load: false })
    await vi.waitFor(async () => expect(await inProgress()).toBe(1))
    // One inside and nobody waiting: a newcomer may still wait for a place.
    expect(t.edge.shed(request('/v1/events'))).toBeUndefined()
    const second = t.post(token, [ev('pause', { ts: Date.now() - 4_000 })], { load: false })
    await vi.waitFor(() => expect(t.edge.shed(request('/v1/events'))).toBeDefined())
    const [refusedBefore, httpBefore] = [await refused(), await http503()]

    const res = t.edge.shed(request('/v1/events', { requestId: 'player-42_retry-1' }))!
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('2')
    expect(res.headers.get('content-type')).toBe('application/problem+json')
    expect(res.headers.get('x-request-id')).toBe('player-42_retry-1')
    const problem = await res.json()
    expect(problem).toEqual({
      type: 'https://errors.creator-settlement.dev/overloaded',
      title: 'Service Unavailable',
      status: 503,
      detail: 'the edge is taking in as many batches as it can at once; retry shortly',
      code: 'OVERLOADED',
      request_id: 'player-42_retry-1',
    })
    // Counted as the route counts its refusals.
    expect(await refused()).toBe(refusedBefore + 1)
    expect(await http503()).toBe(httpBefore + 1)
    // A request id the route would not keep is replaced by one of the edge's, as the route does.
    const other = t.edge.shed(request('/v1/events?from=player', { requestId: 'bad id!' }))!
    expect(other.status).toBe(503)
    expect(other.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect((await other.json()).request_id).toBe(other.headers.get('x-request-id'))
    // Anything but a batch goes its way.
    expect(t.edge.shed(request('/v1/events', { method: 'GET' }))).toBeUndefined()
    expect(t.edge.shed(request('/healthz'))).toBeUndefined()
    expect(t.edge.shed(request('/v1/events/more'))).toBeUndefined()

    // The batches let in are answered as ever; then there is room again.
    expect((await first).status).toBe(200)
    expect((await second).status).toBe(200)
    expect(t.edge.shed(request('/v1/events'))).toBeUndefined()
  })
})

describe('the server sheds such batches at its front', () => {
  it('answers a batch with a bad token 503 while every place is taken and the queue is full, and 401 once it is let in', async () => {
    redis = await startTestRedis()
    const port = await freePort()
    // One batch in at a time, for two seconds (its flush), and none may wait.
    const env = testServerEnv({ dataDir, port, redisUrl: redis.url }, { INGEST_MAX_IN_PROGRESS: '1', INGEST_MAX_WAITING: '0', FLUSH_INTERVAL_MS: '2000' })
    const settings = loadSettings(env)
    const keys = await loadPlaybackKeys(settings) // written once; the server reads the same file
    server = await startServerProcess({ cmd: BUN, args: ['lib/main.ts'], env, port })
    const { token } = await signPlaybackToken(keys, { issuer: settings.PLAYBACK_TOKEN_ISSUER, ttlSeconds: 3600, now: new Date(Date.now() - 60_000) }, {
      viewerId: 'viewer-1', videoId: 'video-shed', creatorId: 'creator-1', sessionId: crypto.randomUUID(), adIds: [], durationMs: 600_000,
    })
    const post = (bearer: string, body: string) =>
      fetch(`${server!.url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body })
    const first = post(token, JSON.stringify({ events: [ev('play', { ts: Date.now() - 5_000 })] }))
    const metricsText = async () => (await fetch(`${server!.url}/metrics`)).text()
    await vi.waitFor(async () => expect(await metricsText()).toMatch(/^cs_ingest_batches_in_progress 1$/m), { timeout: 5_000 })
    const over = await post('not-a-token', 'not json')
    expect(over.status).toBe(503)
    expect(over.headers.get('retry-after')).toBe('2')
    expect((await over.json()).code).toBe('OVERLOADED')
    expect((await first).status).toBe(200)
    // Let in, the same request gets the answer its token deserves.
    expect((await post('not-a-token', 'not json')).status).toBe(401)
    expect(await metricsText()).toMatch(/^cs_ingest_batches_refused_total 1$/m)
  })
})
