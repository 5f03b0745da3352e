import { timingSafeEqual } from 'node:crypto'
import { generateCodeVerifier, generateState } from 'arctic'
import { Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { describeRoute } from 'hono-openapi'
import { z } from 'zod'
import { ApiError } from '../../lib/errors.ts'
import type { AnalyticsDeps, AnalyticsEnv } from '../context.ts'
import { v } from '../http/validate.ts'
import { getUser, upsertUser } from '../users/store.ts'
import { ProviderRefusedError, ProviderUnavailableError, providerNames, type OAuthProvider } from './providers.ts'
import { AUTH_COOKIE_PATH, REFRESH_COOKIE, sessionResponse } from './session.ts'

const STATE_COOKIE = 'cs_oauth_state'
const VERIFIER_COOKIE = 'cs_oauth_verifier'
const FLOW_SECONDS = 600

const devLoginBody = z.object({
  subject: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, '1 to 64 letters, digits or ._@-').describe('Account name; the same subject is the same user'),
  email: z.email().optional().describe('Treated as verified (so ADMIN_EMAILS / ANALYST_EMAILS apply)'),
  name: z.string().max(200).optional(),
})

const refreshBody = z.object({ refresh_token: z.string().max(200).optional().describe('Or the cs_refresh cookie') })
const providerParam = z.object({ provider: z.enum(providerNames) })
const callbackQuery = z.object({ code: z.string().max(4096).optional(), state: z.string().max(512).optional(), error: z.string().max(200).optional(), error_description: z.string().max(1000).optional() })

const tags = ['auth']

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** `/v1/auth/...`: OAuth login (Google, Kakao), dev-login, refresh rotation, logout. */
export function authRoutes(deps: AnalyticsDeps) {
  const { services, refresh } = deps
  const provider = (name: 'google' | 'kakao'): OAuthProvider => {
    const p = deps.providers[name]
    if (!p) throw new ApiError('NOT_CONFIGURED', `${name} login is not configured on this server (set ${name.toUpperCase()}_CLIENT_ID, _CLIENT_SECRET and _REDIRECT_URI)`)
    return p
  }
  const cookieOpts = { httpOnly: true, secure: deps.settings.cookieSecure, sameSite: 'Lax' as const, path: AUTH_COOKIE_PATH, maxAge: FLOW_SECONDS }

  return new Hono<AnalyticsEnv>()
    .post('/auth/dev-login', describeRoute({ tags, security: [], summary: 'Log in without a provider (local use and tests; disabled in production)' }), v('json', devLoginBody), async (c) => {
      if (!deps.settings.devLogin) throw new ApiError('NOT_CONFIGURED', 'dev-login is disabled on this server')
      const body = c.req.valid('json')
      const user = await upsertUser(services.ch, { provider: 'dev', subject: body.subject, email: body.email, emailVerified: body.email !== undefined, name: body.name })
      return sessionResponse(c, deps, user, await refresh.issue(user.user_id))
    })
    .get('/auth/:provider/login', describeRoute({ tags, security: [], summary: 'Start an OAuth login: redirects to the provider', responses: { 302: { description: 'Redirect to the provider' } } }), v('param', providerParam), (c) => {
      const p = provider(c.req.valid('param').provider)
      const state = generateState()
      const verifier = generateCodeVerifier()
      setCookie(c, STATE_COOKIE, state, cookieOpts)
      if (p.pkce) setCookie(c, VERIFIER_COOKIE, verifier, cookieOpts)
      return c.redirect(p.authorizationUrl(state, verifier).toString(), 302)
    })
    .get('/auth/:provider/callback', describeRoute({ tags, security: [], summary: 'Finish an OAuth login: checks state (and PKCE), creates the user on first login, returns tokens' }), v('param', providerParam), v('query', callbackQuery), async (c) => {
      const p = provider(c.req.valid('param').provider)
      const q = c.req.valid('query')
      const expectedState = getCookie(c, STATE_COOKIE)
      const verifier = getCookie(c, VERIFIER_COOKIE)
      deleteCookie(c, STATE_COOKIE, { path: AUTH_COOKIE_PATH })
      deleteCookie(c, VERIFIER_COOKIE, { path: AUTH_COOKIE_PATH })
      if (q.error) throw new ApiError('UNAUTHORIZED', `the provider did not log you in: ${q.error}${q.error_description ? ` (${q.error_description})` : ''}`)
      if (!q.code || !q.state) throw new ApiError('INVALID_QUERY', 'code and state are required')
      if (!expectedState || !sameText(expectedState, q.state)) throw new ApiError('BAD_REQUEST', 'login state does not match (expired, or started in another browser); start the login again')
      if (p.pkce && !verifier) throw new ApiError('BAD_REQUEST', 'login code verifier is missing; start the login again')
      let identity
      try {
        identity = await p.identify(q.code, verifier ?? '')
      } catch (err) {
        if (err instanceof ProviderRefusedError) throw new ApiError('UNAUTHORIZED', err.message)
        if (err instanceof ProviderUnavailableError) throw new ApiError('OVERLOADED', err.message, { retryAfterSeconds: 5 })
        throw err
      }
      const user = await upsertUser(services.ch, identity)
      return sessionResponse(c, deps, user, await refresh.issue(user.user_id))
    })
    .post('/auth/refresh', describeRoute({ tags, security: [], summary: 'Exchange a refresh token for new tokens (rotation; reuse revokes the login)' }), v('json', refreshBody), async (c) => {
      const token = c.req.valid('json').refresh_token ?? getCookie(c, REFRESH_COOKIE)
      if (!token) throw new ApiError('UNAUTHORIZED', 'send refresh_token in the body or the cs_refresh cookie')
      const result = await refresh.rotate(token)
      if (result.status === 'reuse') {
        services.log.warn('refresh token reuse; family revoked', { request_id: c.get('requestId') })
        throw new ApiError('INVALID_TOKEN', 'this refresh token was already used; every session of this login is now revoked, log in again')
      }
      if (result.status !== 'ok') throw new ApiError('INVALID_TOKEN', 'refresh token is not valid (unknown, expired or revoked); log in again')
      const user = await getUser(services.ch, result.userId)
      if (!user) throw new ApiError('INVALID_TOKEN', 'the user of this refresh token no longer exists')
      return sessionResponse(c, deps, user, result.token)
    })
    .post('/auth/logout', describeRoute({ tags, security: [], summary: 'Revoke the login the refresh token belongs to', responses: { 204: { description: 'Logged out' } } }), v('json', refreshBody), async (c) => {
      const token = c.req.valid('json').refresh_token ?? getCookie(c, REFRESH_COOKIE)
      if (token) await refresh.revoke(token)
      deleteCookie(c, REFRESH_COOKIE, { path: AUTH_COOKIE_PATH })
      return c.body(null, 204)
    })
}
