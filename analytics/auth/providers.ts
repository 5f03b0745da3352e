/**
 * The one module that knows arctic (pinned at 3.7.0, deprecated upstream): Google
 * (OpenID Connect with PKCE, ID token verified against Google's keys) and Kakao
 * (OAuth 2 with the user-info API). Swapping the library touches this file only.
 */
import { ArcticFetchError, Google, Kakao, OAuth2RequestError, type OAuth2Tokens } from 'arctic'
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose'
import type { AnalyticsSettings } from '../settings.ts'
import type { Identity } from '../users/store.ts'

export type ProviderName = 'google' | 'kakao'
export const providerNames: readonly ProviderName[] = ['google', 'kakao']

export type OAuthProvider = {
  name: ProviderName
  /** Whether the flow sends a PKCE code challenge (then the verifier must come back on callback). */
  pkce: boolean
  authorizationUrl(state: string, codeVerifier: string): URL
  /** Exchanges the callback's code for the account it belongs to. */
  identify(code: string, codeVerifier: string): Promise<Identity>
}

export type OAuthProviders = Partial<Record<ProviderName, OAuthProvider>>

/** The provider refused (bad code, wrong client, invalid ID token): a 401 for the caller. */
export class ProviderRefusedError extends Error {
  override name = 'ProviderRefusedError'
}
/** The provider could not be reached or answered nonsense: a 503 for the caller. */
export class ProviderUnavailableError extends Error {
  override name = 'ProviderUnavailableError'
}

const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com']
const GOOGLE_JWKS = 'https://www.googleapis.com/oauth2/v3/certs'
const KAKAO_USER_INFO = 'https://kapi.kakao.com/v2/user/me'
const PROVIDER_HOSTS = new Set(['accounts.google.com', 'oauth2.googleapis.com', 'www.googleapis.com', 'kauth.kakao.com', 'kapi.kakao.com'])

/** Maps a provider URL onto the stand-in (`<base>/<host>/<path>`) when one is configured. */
function redirectTo(base: string | undefined, url: string): string {
  if (!base) return url
  const u = new URL(url)
  if (!PROVIDER_HOSTS.has(u.host)) return url
  return `${base.replace(/\/$/, '')}/${u.host}${u.pathname}${u.search}`
}

let standInInstalled: string | undefined

/**
 * arctic hard-codes the providers' endpoints and calls the global fetch. For tests
 * and local demos the provider hosts are redirected to a stand-in server at the
 * network boundary; other requests pass untouched. Never installed in production
 * (the setting is refused there).
 */
function installStandIn(base: string): void {
  if (standInInstalled === base) return
  if (standInInstalled !== undefined) throw new Error('a different OAUTH_PROVIDER_BASE_URL is already installed in this process')
  const original = globalThis.fetch
  const wrapped = (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input)
    const target = redirectTo(base, url)
    if (target === url) return original(input, init)
    return original(input instanceof Request ? new Request(target, input) : target, init)
  }
  globalThis.fetch = Object.assign(wrapped, original)
  standInInstalled = base
}

async function send<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (err) {
    if (err instanceof OAuth2RequestError) throw new ProviderRefusedError(`${what}: ${err.code}${err.description ? ` (${err.description})` : ''}`)
    if (err instanceof ArcticFetchError) throw new ProviderUnavailableError(`${what}: the provider could not be reached`)
    if (err instanceof ProviderRefusedError || err instanceof ProviderUnavailableError) throw err
    throw new ProviderUnavailableError(`${what}: unexpected answer from the provider (${err instanceof Error ? err.message : String(err)})`)
  }
}

function str(obj: object, key: string): string | undefined {
  const v = key in obj ? (obj as Record<string, unknown>)[key] : undefined
  return typeof v === 'string' ? v : undefined
}

function createGoogle(s: AnalyticsSettings, clientId: string, clientSecret: string, redirectUri: string): OAuthProvider {
  const google = new Google(clientId, clientSecret, redirectUri)
  const base = s.OAUTH_PROVIDER_BASE_URL
  const jwks = createRemoteJWKSet(new URL(redirectTo(base, GOOGLE_JWKS)), { [customFetch]: (url, options) => fetch(url, options) })
  return {
    name: 'google',
    pkce: true,
    authorizationUrl: (state, verifier) => new URL(redirectTo(base, google.createAuthorizationURL(state, verifier, ['openid', 'email', 'profile']).toString())),
    async identify(code, verifier) {
      const tokens: OAuth2Tokens = await send('google token exchange', () => google.validateAuthorizationCode(code, verifier))
      let idToken: string
      try {
        idToken = tokens.idToken()
      } catch {
        throw new ProviderRefusedError('google answered without an ID token')
      }
      let payload: Record<string, unknown>
      try {
        ;({ payload } = await jwtVerify(idToken, jwks, { issuer: GOOGLE_ISSUERS, audience: clientId, algorithms: ['RS256', 'ES256'], requiredClaims: ['sub', 'exp', 'iat'] }))
      } catch (err) {
        if (err instanceof Error && err.name === 'JWKSTimeout') throw new ProviderUnavailableError('google keys could not be fetched')
        throw new ProviderRefusedError(`google ID token is not valid (${err instanceof Error ? err.message : String(err)})`)
      }
      const subject = str(payload, 'sub')
      if (!subject) throw new ProviderRefusedError('google ID token has no subject')
      return { provider: 'google', subject, email: str(payload, 'email'), emailVerified: payload.email_verified === true, name: str(payload, 'name') }
    },
  }
}

function createKakao(s: AnalyticsSettings, clientId: string, clientSecret: string, redirectUri: string): OAuthProvider {
  const kakao = new Kakao(clientId, clientSecret, redirectUri)
  const base = s.OAUTH_PROVIDER_BASE_URL
  return {
    name: 'kakao',
    pkce: false,
    authorizationUrl: (state) => new URL(redirectTo(base, kakao.createAuthorizationURL(state, ['account_email', 'profile_nickname']).toString())),
    async identify(code) {
      const tokens: OAuth2Tokens = await send('kakao token exchange', () => kakao.validateAuthorizationCode(code))
      const info = await send('kakao user info', async () => {
        const res = await fetch(redirectTo(base, KAKAO_USER_INFO), { headers: { authorization: `Bearer ${tokens.accessToken()}` } })
        if (res.status === 401) throw new ProviderRefusedError('kakao refused the access token')
        if (!res.ok) throw new ProviderUnavailableError(`kakao user info answered ${res.status}`)
        const body: unknown = await res.json()
        if (typeof body !== 'object' || body === null) throw new ProviderUnavailableError('kakao user info is not an object')
        return body
      })
      const id = 'id' in info ? info.id : undefined
      if (typeof id !== 'number' && typeof id !== 'string') throw new ProviderRefusedError('kakao user info has no id')
      const account = 'kakao_account' in info && typeof info.kakao_account === 'object' && info.kakao_account !== null ? info.kakao_account : {}
      const profile = 'profile' in account && typeof account.profile === 'object' && account.profile !== null ? account.profile : {}
      const verified = 'is_email_verified' in account && account.is_email_verified === true && 'is_email_valid' in account && account.is_email_valid === true
      return { provider: 'kakao', subject: String(id), email: str(account, 'email'), emailVerified: verified, name: str(profile, 'nickname') }
    },
  }
}

/** The providers whose settings are complete; the others are reported as not configured. */
export function createOAuthProviders(s: AnalyticsSettings): OAuthProviders {
  if (s.OAUTH_PROVIDER_BASE_URL) installStandIn(s.OAUTH_PROVIDER_BASE_URL)
  const out: OAuthProviders = {}
  if (s.GOOGLE_CLIENT_ID && s.GOOGLE_CLIENT_SECRET && s.GOOGLE_REDIRECT_URI) out.google = createGoogle(s, s.GOOGLE_CLIENT_ID, s.GOOGLE_CLIENT_SECRET, s.GOOGLE_REDIRECT_URI)
  if (s.KAKAO_CLIENT_ID && s.KAKAO_REDIRECT_URI) out.kakao = createKakao(s, s.KAKAO_CLIENT_ID, s.KAKAO_CLIENT_SECRET ?? '', s.KAKAO_REDIRECT_URI)
  return out
}
