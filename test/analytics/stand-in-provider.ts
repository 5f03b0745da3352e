import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

export type GoogleAccount = { sub: string; email?: string; email_verified?: boolean; name?: string }
export type KakaoAccount = { id: number; email?: string; verified?: boolean; nickname?: string }

type Grant = { provider: 'google'; account: GoogleAccount; challenge?: string; aud?: string; signWithOtherKey?: boolean } | { provider: 'kakao'; account: KakaoAccount }

/**
 * A stand-in for Google's and Kakao's token, key and user-info endpoints on 127.0.0.1,
 * reached through OAUTH_PROVIDER_BASE_URL as `<base>/<provider host>/<path>`. It signs
 * real RS256 ID tokens and checks PKCE like the real token endpoint.
 */
export async function startStandInProvider(opts: { googleClientId: string; googleClientSecret: string; kakaoClientId: string }) {
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const other = await generateKeyPair('RS256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'stand-in-1', alg: 'RS256', use: 'sig' }
  const grants = new Map<string, Grant>()
  const kakaoTokens = new Map<string, KakaoAccount>()
  const requests: string[] = []

  const body = (req: IncomingMessage) =>
    new Promise<URLSearchParams>((resolve) => {
      let text = ''
      req.on('data', (c: Buffer) => (text += c.toString()))
      req.on('end', () => resolve(new URLSearchParams(text)))
    })

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://stand-in')
    requests.push(`${req.method} ${url.pathname}`)
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(value))
    }
    if (req.method === 'GET' && url.pathname === '/www.googleapis.com/oauth2/v3/certs') return json(200, { keys: [jwk] })
    if (req.method === 'POST' && url.pathname === '/oauth2.googleapis.com/token') {
      const form = await body(req)
      const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString()
      if (basic !== `${opts.googleClientId}:${opts.googleClientSecret}`) return json(401, { error: 'invalid_client' })
      const grant = grants.get(form.get('code') ?? '')
      grants.delete(form.get('code') ?? '')
      if (!grant || grant.provider !== 'google') return json(400, { error: 'invalid_grant', error_description: 'unknown or used code' })
      const verifier = form.get('code_verifier') ?? ''
      if (grant.challenge !== createHash('sha256').update(verifier).digest('base64url')) return json(400, { error: 'invalid_grant', error_description: 'PKCE verification failed' })
      const idToken = await new SignJWT({ ...grant.account })
        .setProtectedHeader({ alg: 'RS256', kid: 'stand-in-1' })
        .setIssuer('https://accounts.google.com')
        .setAudience(grant.aud ?? opts.googleClientId)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(grant.signWithOtherKey ? other.privateKey : privateKey)
      return json(200, { access_token: 'google-at', token_type: 'Bearer', expires_in: 3599, id_token: idToken, scope: 'openid email profile' })
    }
    if (req.method === 'POST' && url.pathname === '/kauth.kakao.com/oauth/token') {
      const form = await body(req)
      if (form.get('client_id') !== opts.kakaoClientId) return json(401, { error: 'invalid_client' })
      const grant = grants.get(form.get('code') ?? '')
      grants.delete(form.get('code') ?? '')
      if (!grant || grant.provider !== 'kakao') return json(400, { error: 'invalid_grant' })
      const token = `kakao-at-${grant.account.id}-${Math.random()}`
      kakaoTokens.set(token, grant.account)
      return json(200, { access_token: token, token_type: 'bearer', expires_in: 21599, refresh_token: 'kakao-rt' })
    }
    if (req.method === 'GET' && url.pathname === '/kapi.kakao.com/v2/user/me') {
      const account = kakaoTokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''))
      if (!account) return json(401, { msg: 'this access token does not exist', code: -401 })
      return json(200, {
        id: account.id,
        kakao_account: { email: account.email, is_email_valid: true, is_email_verified: account.verified ?? false, profile: { nickname: account.nickname } },
      })
    }
    json(404, { error: 'not_found' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    base,
    requests,
    /** The user approves the login: the provider will accept `code` once. */
    approve(code: string, grant: Grant) {
      grants.set(code, grant)
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
