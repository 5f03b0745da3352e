import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT } from 'jose'
import { createAnalytics } from '../app.ts'
import { ADMIN_EMAIL, startAnalyticsApi, type TestApi } from '../../test/analytics/helpers.ts'

let api: TestApi
beforeAll(async () => {
  api = await startAnalyticsApi()
})
afterAll(() => api?.stop())

type Tokens = { access_token: string; refresh_token: string; user: { id: string; roles: string[] } }

describe('dev-login and /v1/me', () => {
  it('creates a user on first login with a stable id and role viewer', async () => {
    const a = await api.login('alice')
    const b = await api.login('alice')
    expect(a.userId).toBe(b.userId)
    const me = await api.request('/v1/me', { token: a.token })
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ id: a.userId, provider: 'dev', roles: ['viewer'] })
    const { created_at } = (await (await api.request('/v1/me', { token: b.token })).json()) as { created_at: string }
    // The first login's time, in RFC 3339 UTC like every instant the API answers with.
    expect(created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
    expect(Math.abs(Date.parse(created_at) - Date.now())).toBeLessThan(60_000)
  })

  it('gives role admin to a verified email listed in ADMIN_EMAILS', async () => {
    const admin = await api.login('boss', { email: ADMIN_EMAIL.toUpperCase() })
    const me = (await (await api.request('/v1/me', { token: admin.token })).json()) as { roles: string[] }
    expect(me.roles).toContain('admin')
  })

  it('POST /v1/me/creator grants the creator role and a token that carries it', async () => {
    const u = await api.login('carol')
    const res = await api.request('/v1/me/creator', { method: 'POST', token: u.token, json: { roles: ['admin'] } })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { access_token: string; user: { roles: string[] } }
    expect(body.user.roles).toEqual(['viewer', 'creator'])
    const me = (await (await api.request('/v1/me', { token: body.access_token })).json()) as { roles: string[] }
    expect(me.roles).toEqual(['viewer', 'creator'])
  })

  it('rejects a malformed dev-login body with problem+json', async () => {
    const res = await api.request('/v1/auth/dev-login', { method: 'POST', json: { subject: 'no spaces allowed' } })
    expect(res.status).toBe(400)
    expect(res.headers.get('content-type')).toContain('application/problem+json')
    expect(await res.json()).toMatchObject({ status: 400, code: 'INVALID_BODY', request_id: expect.any(String) })
  })
})

describe('access tokens', () => {
  it('answers 401 without a token, with a bad one, and with a token of another audience', async () => {
    expect((await api.request('/v1/me')).status).toBe(401)
    const bad = await api.request('/v1/me', { token: 'not-a-jwt' })
    expect(bad.status).toBe(401)
    expect(await bad.json()).toMatchObject({ code: 'INVALID_TOKEN' })
    const forged = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setSubject('u_x')
      .setIssuer('creator-settlement')
      .setAudience('analytics')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a-secret-that-is-not-the-servers-secret!'))
    expect((await api.request('/v1/me', { token: forged })).status).toBe(401)
  })

  it('refuses alg none', async () => {
    const u = await api.login('dave')
    const [, payload] = u.token.split('.')
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${payload}.`
    expect((await api.request('/v1/me', { token: none })).status).toBe(401)
  })
})

describe('refresh tokens', () => {
  const refresh = (token: string) => api.request('/v1/auth/refresh', { method: 'POST', json: { refresh_token: token } })

  it('rotates on every use', async () => {
    const u = await api.login('erin')
    const r1 = await refresh(u.refresh)
    expect(r1.status).toBe(200)
    const t1 = (await r1.json()) as Tokens
    expect(t1.refresh_token).not.toBe(u.refresh)
    expect(t1.user.id).toBe(u.userId)
    expect(r1.headers.get('set-cookie')).toMatch(/cs_refresh=.*HttpOnly/i)
    const r2 = await refresh(t1.refresh_token)
    expect(r2.status).toBe(200)
  })

  it('revokes the whole family when a used token is presented again', async () => {
    const u = await api.login('frank')
    const t1 = (await (await refresh(u.refresh)).json()) as Tokens
    const reuse = await refresh(u.refresh)
    expect(reuse.status).toBe(401)
    expect(((await reuse.json()) as { detail: string }).detail).toMatch(/already used/)
    // The legitimate successor is revoked too.
    expect((await refresh(t1.refresh_token)).status).toBe(401)
  })

  it('accepts the refresh cookie and recomputes roles', async () => {
    const u = await api.login('gina')
    await api.request('/v1/me/creator', { method: 'POST', token: u.token })
    const res = await api.request('/v1/auth/refresh', { method: 'POST', headers: { cookie: `cs_refresh=${u.refresh}` } })
    expect(res.status).toBe(200)
    expect(((await res.json()) as Tokens).user.roles).toContain('creator')
  })

  it('logout revokes the login', async () => {
    const u = await api.login('hank')
    expect((await api.request('/v1/auth/logout', { method: 'POST', json: { refresh_token: u.refresh } })).status).toBe(204)
    expect((await refresh(u.refresh)).status).toBe(401)
  })

  it('refuses garbage and unknown tokens', async () => {
    expect((await refresh('garbage')).status).toBe(401)
    expect((await refresh(`${'a'.repeat(22)}.${'b'.repeat(43)}`)).status).toBe(401)
    expect((await api.request('/v1/auth/refresh', { method: 'POST' })).status).toBe(401)
  })
})

describe('providers and dev-login settings', () => {
  it('reports an unconfigured provider as 404 NOT_CONFIGURED', async () => {
    const res = await api.request('/v1/auth/google/login')
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ code: 'NOT_CONFIGURED' })
    expect((await api.request('/v1/auth/github/login')).status).toBe(400)
  })

  it('refuses to start with dev-login enabled in production', () => {
    expect(() => createAnalytics(api.s, { env: { NODE_ENV: 'production', DEV_LOGIN: 'true' } })).toThrow(/DEV_LOGIN/)
  })

  it('disables dev-login by default in production', async () => {
    const prod = createAnalytics(api.s, { env: { NODE_ENV: 'production' } })
    const res = await prod.app.request('/v1/auth/dev-login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ subject: 'x' }) })
    expect(res.status).toBe(404)
  })
})
