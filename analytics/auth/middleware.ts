import type { Context, MiddlewareHandler } from 'hono'
import { ApiError } from '../../lib/errors.ts'
import type { AnalyticsEnv } from '../context.ts'
import type { Role } from '../users/store.ts'
import { verifyAccessToken, type AccessTokenConfig, type Principal } from './access-token.ts'

/**
 * Route middlewares that read `Authorization: Bearer <access token>` and set
 * `principal`. They are attached per route, never app-wide, because the analytics
 * app is mounted at the root next to the ingest edge, whose bearer tokens are
 * playback tokens. A bad or expired token is a 401 even where anonymous callers are
 * welcome, so a client learns its token is bad instead of silently acting anonymously.
 *
 * @example
 * const auth = createAuth(config)
 * app.get('/me', auth.require(), handler)
 * app.post('/ads', auth.require('admin'), handler)
 * app.post('/videos/:id/play', auth.optional, handler)
 */
export function createAuth(config: AccessTokenConfig) {
  async function resolve(c: Context<AnalyticsEnv>): Promise<void> {
    if (c.get('principal')) return
    const header = c.req.header('authorization')
    if (header === undefined) return
    if (!/^bearer\s+\S/i.test(header)) throw new ApiError('UNAUTHORIZED', 'send Authorization: Bearer <access token>')
    const result = await verifyAccessToken(config, header.replace(/^bearer\s+/i, '').trim())
    if (!result.ok) throw new ApiError('INVALID_TOKEN', result.reason)
    c.set('principal', result.principal)
  }

  const optional: MiddlewareHandler<AnalyticsEnv> = async function optionalAuth(c, next) {
    await resolve(c)
    await next()
  }

  /** A logged-in caller holding one of `roles` (any logged-in caller when none are given). */
  function require(...roles: Role[]): MiddlewareHandler<AnalyticsEnv> {
    return async function requireAuth(c, next) {
      await resolve(c)
      const p = principalOf(c)
      if (roles.length > 0 && !hasRole(p, ...roles)) throw new ApiError('FORBIDDEN', `this needs role ${roles.join(' or ')}`)
      await next()
    }
  }

  return { optional, require }
}

export type Auth = ReturnType<typeof createAuth>

/** The authenticated caller, or a 401. */
export function principalOf(c: Context<AnalyticsEnv>): Principal {
  const p = c.get('principal')
  if (!p) throw new ApiError('UNAUTHORIZED', 'log in first: send Authorization: Bearer <access token>')
  return p
}

export function hasRole(p: Principal, ...roles: Role[]): boolean {
  return roles.some((r) => p.roles.includes(r))
}
