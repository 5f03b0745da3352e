import type { Hono } from 'hono'
import { createAnalytics, type AnalyticsOptions } from '../../analytics/app.ts'
import { createRootApp } from '../../lib/http.ts'
import type { AppEnv } from '../../lib/services.ts'
import { startTestServices, type TestServices } from '../harness/services.ts'

export const ADMIN_EMAIL = 'admin@example.com'
export const ANALYST_EMAIL = 'analyst@example.com'

export type Session = { token: string; refresh: string; userId: string; auth: { authorization: string } }

export type TestApi = {
  s: TestServices
  app: Hono<AppEnv>
  request(path: string, init?: RequestInit & { json?: unknown; token?: string; ip?: string }): Promise<Response>
  /** dev-login as `subject`; `creator` also takes the creator role. */
  login(subject: string, opts?: { email?: string; creator?: boolean }): Promise<Session>
  stop(): Promise<void>
}

/**
 * The analytics app on real engines, mounted the way the all-in-one server does it
 * (request id and services set at the root). `opts.now` sets the app's clock.
 */
export async function startAnalyticsApi(env: Record<string, string> = {}, opts: Pick<AnalyticsOptions, 'now'> = {}): Promise<TestApi> {
  const s = await startTestServices()
  const analytics = createAnalytics(s, { env: { NODE_ENV: 'test', ADMIN_EMAILS: ADMIN_EMAIL, ANALYST_EMAILS: ANALYST_EMAIL, ...env }, ...opts })
  // Mounted the way lib/main.ts mounts the service apps.
  const app: Hono<AppEnv> = createRootApp(s, { apps: [analytics.app] })

  const request: TestApi['request'] = (path, init = {}) => {
    const headers = new Headers(init.headers)
    if (init.token) headers.set('authorization', `Bearer ${init.token}`)
    let body = init.body
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json')
      body = JSON.stringify(init.json)
    }
    return Promise.resolve(app.request(path, { ...init, headers, body }, { ip: init.ip ?? '10.0.0.9' }))
  }

  const login: TestApi['login'] = async (subject, opts = {}) => {
    const res = await request('/v1/auth/dev-login', { method: 'POST', json: { subject, email: opts.email } })
    if (res.status !== 200) throw new Error(`dev-login failed: ${res.status} ${await res.text()}`)
    const body = (await res.json()) as { access_token: string; refresh_token: string; user: { id: string } }
    let token = body.access_token
    if (opts.creator) {
      const r = await request('/v1/me/creator', { method: 'POST', token })
      if (r.status !== 200) throw new Error(`becoming creator failed: ${r.status} ${await r.text()}`)
      token = ((await r.json()) as { access_token: string }).access_token
    }
    return { token, refresh: body.refresh_token, userId: body.user.id, auth: { authorization: `Bearer ${token}` } }
  }

  return {
    s,
    app,
    request,
    login,
    async stop() {
      await analytics.close()
      await s.stopAll()
    },
  }
}
