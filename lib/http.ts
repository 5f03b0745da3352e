import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import { routePath } from 'hono/route'
import { notFound, onError } from './errors.ts'
import type { AppEnv, Services } from './services.ts'

/** Anything mounted at the root: a Hono app of one of the services. */
type Mountable = Hono<any>

/**
 * The process's HTTP front: request ids, metrics, `/healthz`, `/readyz`,
 * `/metrics`, one error shape, and the service apps mounted under it.
 *
 * @example
 * const app = createRootApp(services, { apps: [edge.app], ready: () => edge.accepting })
 */
export function createRootApp(services: Services, opts: { apps: Mountable[]; ready?: () => boolean }) {
  const { metrics } = services
  const app = new Hono<AppEnv>()
  app.use(requestId({ headerName: 'x-request-id' }))
  app.use(async function servicesAndMetrics(c, next) {
    c.set('services', services)
    const started = performance.now()
    await next()
    const route = routePath(c) || 'unmatched'
    metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) })
    metrics.httpDuration.observe({ method: c.req.method, route }, (performance.now() - started) / 1000)
  })
  app.onError(onError)
  app.notFound(notFound)

  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/readyz', async (c) => {
    const checks = await readiness(services)
    const accepting = opts.ready?.() ?? true
    const ok = checks.clickhouse === 'ok' && checks.redis === 'ok' && accepting
    return c.json({ status: ok ? 'ready' : 'not_ready', ...checks, accepting }, ok ? 200 : 503)
  })
  app.get('/metrics', async (c) => {
    return c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType })
  })
  for (const sub of opts.apps) app.route('/', sub)
  return app
}

async function readiness(services: Services): Promise<{ clickhouse: string; redis: string }> {
  const timeout = <T,>(p: Promise<T>) => Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), 2_000))])
  const [chResult, redisResult] = await Promise.allSettled([
    timeout(services.ch.query({ query: 'SELECT 1 AS ok', format: 'JSONEachRow' }).then((rs) => rs.json())),
    // A script round trip, not just PING: the edge depends on scripting.
    timeout(services.redis.eval('return 1', 0)),
  ])
  const describe = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? 'ok' : `down: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`)
  return { clickhouse: describe(chResult), redis: describe(redisResult) }
}
