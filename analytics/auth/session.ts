import type { Context } from 'hono'
import { setCookie } from 'hono/cookie'
import type { AnalyticsDeps } from '../context.ts'
import { effectiveRoles, publicUser, type UserRow } from '../users/store.ts'
import { signAccessToken } from './access-token.ts'

export const REFRESH_COOKIE = 'cs_refresh'
export const AUTH_COOKIE_PATH = '/v1/auth'

/** Issues an access token for the user as they are now (roles recomputed). */
export async function accessTokenFor(deps: AnalyticsDeps, user: UserRow) {
  const roles = effectiveRoles(user, deps.settings)
  const { token, expiresIn } = await signAccessToken(deps.access, { userId: user.user_id, roles })
  return { access_token: token, token_type: 'Bearer' as const, expires_in: expiresIn, user: publicUser(user, roles) }
}

/**
 * Answers a login or a refresh: a fresh access token, the refresh token in the body
 * and in an httpOnly cookie scoped to the auth routes.
 */
export async function sessionResponse(c: Context, deps: AnalyticsDeps, user: UserRow, refreshToken: string) {
  setCookie(c, REFRESH_COOKIE, refreshToken, {
    httpOnly: true,
    secure: deps.settings.cookieSecure,
    sameSite: 'Lax',
    path: AUTH_COOKIE_PATH,
    maxAge: deps.refresh.ttlSeconds,
  })
  return c.json({ ...(await accessTokenFor(deps, user)), refresh_token: refreshToken, refresh_expires_in: deps.refresh.ttlSeconds })
}
