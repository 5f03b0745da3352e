import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_EMAIL, startAnalyticsApi, type TestApi } from '../../test/analytics/helpers.ts'
import { startStandInProvider } from '../../test/analytics/stand-in-provider.ts'

let api: TestApi
let provider: Awaited<ReturnType<typeof startStandInProvider>>
const google = { GOOGLE_CLIENT_ID: 'g-client', GOOGLE_CLIENT_SECRET: 'g-secret', GOOGLE_REDIRECT_URI: 'http://localhost:8080/v1/auth/google/callback' }
const kakao = { KAKAO_CLIENT_ID: 'k-client', KAKAO_CLIENT_SECRET: 'k-secret', KAKAO_REDIRECT_URI: 'http://localhost:8080/v1/auth/kakao/callback' }

beforeAll(async () => {
  provider = await startStandInProvider({ googleClientId: google.GOOGLE_CLIENT_ID, googleClientSecret: google.GOOGLE_CLIENT_SECRET, kakaoClientId: kakao.KAKAO_CLIENT_ID })
  api = await startAnalyticsApi({ ...google, ...kakao, OAUTH_PROVIDER_BASE_URL: provider.base })
})
afterAll(async () => {
  await api?.stop()
  await provider?.stop()
})

/** Starts a login; returns the authorization URL and the cookies the browser keeps. */
async function startLogin(name: 'google' | 'kakao') {
  const res = await api.request(`/v1/auth/${name}/login`)
  expect(res.status).toBe(302)
  const location = new URL(res.headers.get('location')!)
  const cookies = res.headers.getSetCookie()
  for (const c of cookies) {
    expect(c).toMatch(/HttpOnly/i)
    expect(c).toMatch(/SameSite=Lax/i)
  }
  return { location, cookie: cookies.map((c) => c.split(';')[0]).join('; ') }
}

const callback = (name: string, query: Record<string, string>, cookie: string) => api.request(`/v1/auth/${name}/callback?${new URLSearchParams(query)}`, { headers: { cookie } })

type Tokens = { access_token: string; refresh_token: string; user: { id: string; provider: string; email: string | null; roles: string[] } }

describe('Google login (OIDC with PKCE)', () => {
  it('sends the browser to Google with state and an S256 code challenge', async () => {
    const { location } = await startLogin('google')
    expect(location.pathname).toBe('/accounts.google.com/o/oauth2/v2/auth')
    expect(location.searchParams.get('client_id')).toBe('g-client')
    expect(location.searchParams.get('code_challenge_method')).toBe('S256')
    expect(location.searchParams.get('scope')).toContain('openid')
    expect(location.searchParams.get('state')).toBeTruthy()
  })

  it('creates the user on first login from a verified ID token, with a stable id', async () => {
    const login = async () => {
      const { location, cookie } = await startLogin('google')
      provider.approve('code-g', { provider: 'google', account: { sub: 'google-123', email: ADMIN_EMAIL, email_verified: true, name: 'Ada' }, challenge: location.searchParams.get('code_challenge')! })
      const res = await callback('google', { code: 'code-g', state: location.searchParams.get('state')! }, cookie)
      expect(res.status).toBe(200)
      return (await res.json()) as Tokens
    }
    const first = await login()
    expect(first.user).toMatchObject({ provider: 'google', email: ADMIN_EMAIL, roles: ['viewer', 'admin'] })
    const again = await login()
    expect(again.user.id).toBe(first.user.id)
    expect((await api.request('/v1/me', { token: again.access_token })).status).toBe(200)
    expect((await api.request('/v1/auth/refresh', { method: 'POST', json: { refresh_token: again.refresh_token } })).status).toBe(200)
  })

  it('gives no admin role for an unverified email', async () => {
    const { location, cookie } = await startLogin('google')
    provider.approve('code-u', { provider: 'google', account: { sub: 'google-unverified', email: ADMIN_EMAIL, email_verified: false }, challenge: location.searchParams.get('code_challenge')! })
    const body = (await (await callback('google', { code: 'code-u', state: location.searchParams.get('state')! }, cookie)).json()) as Tokens
    expect(body.user.roles).toEqual(['viewer'])
  })

  it('refuses a callback whose state does not match, or without the login cookies', async () => {
    const { location, cookie } = await startLogin('google')
    expect((await callback('google', { code: 'x', state: 'forged' }, cookie)).status).toBe(400)
    expect((await callback('google', { code: 'x', state: location.searchParams.get('state')! }, '')).status).toBe(400)
  })

  it('refuses an ID token signed by another key or for another client', async () => {
    for (const grant of [{ signWithOtherKey: true }, { aud: 'someone-else' }]) {
      const { location, cookie } = await startLogin('google')
      provider.approve('code-bad', { provider: 'google', account: { sub: 'google-evil' }, challenge: location.searchParams.get('code_challenge')!, ...grant })
      const res = await callback('google', { code: 'code-bad', state: location.searchParams.get('state')! }, cookie)
      expect(res.status).toBe(401)
      expect(((await res.json()) as { detail: string }).detail).toMatch(/ID token is not valid/)
    }
  })

  it('reports a code the provider refuses (PKCE mismatch, reused code) and a denied consent as 401', async () => {
    const { location, cookie } = await startLogin('google')
    provider.approve('code-pkce', { provider: 'google', account: { sub: 'google-x' }, challenge: 'not-the-challenge' })
    const res = await callback('google', { code: 'code-pkce', state: location.searchParams.get('state')! }, cookie)
    expect(res.status).toBe(401)
    expect(((await res.json()) as { detail: string }).detail).toMatch(/invalid_grant/)
    const denied = await startLogin('google')
    expect((await callback('google', { error: 'access_denied', state: denied.location.searchParams.get('state')! }, denied.cookie)).status).toBe(401)
  })
})

describe('Kakao login', () => {
  it('logs in through the token and user-info endpoints', async () => {
    const { location, cookie } = await startLogin('kakao')
    expect(location.pathname).toBe('/kauth.kakao.com/oauth/authorize')
    provider.approve('code-k', { provider: 'kakao', account: { id: 987654321, email: 'k@example.com', verified: true, nickname: '카카오' } })
    const res = await callback('kakao', { code: 'code-k', state: location.searchParams.get('state')! }, cookie)
    expect(res.status).toBe(200)
    const body = (await res.json()) as Tokens
    expect(body.user).toMatchObject({ provider: 'kakao', email: 'k@example.com', roles: ['viewer'] })
    expect(provider.requests).toContain('GET /kapi.kakao.com/v2/user/me')
  })

  it('keeps Google and Kakao accounts with the same subject apart', async () => {
    const { location, cookie } = await startLogin('kakao')
    provider.approve('code-k2', { provider: 'kakao', account: { id: 123 } })
    const k = (await (await callback('kakao', { code: 'code-k2', state: location.searchParams.get('state')! }, cookie)).json()) as Tokens
    const g = await startLogin('google')
    provider.approve('code-g2', { provider: 'google', account: { sub: '123' }, challenge: g.location.searchParams.get('code_challenge')! })
    const gg = (await (await callback('google', { code: 'code-g2', state: g.location.searchParams.get('state')! }, g.cookie)).json()) as Tokens
    expect(k.user.id).not.toBe(gg.user.id)
  })
})
