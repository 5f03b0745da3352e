import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose'
import { z } from 'zod'
import { roles, type Role } from '../users/store.ts'
import { verifiedTokens, type VerifiedTokens } from '../../lib/verified-tokens.ts'

/** The one algorithm access tokens use; any other `alg` is refused. */
export const ACCESS_ALG = 'HS256'
/** Audience of access tokens, so a playback token (aud=ingest) is never taken for one. */
export const ACCESS_AUDIENCE = 'analytics'

export type AccessTokenConfig = { key: Uint8Array<ArrayBuffer>; issuer: string; ttlSeconds: number }
export type Principal = { userId: string; roles: Role[] }

/**
 * The HS256 secret of access tokens: ACCESS_TOKEN_SECRET, or (local mode) a random
 * secret generated once under `DATA_DIR/keys/access-token.secret`.
 */
export function loadAccessSecret(opts: { secret?: string; dataDir: string }): Uint8Array<ArrayBuffer> {
  if (opts.secret) return new TextEncoder().encode(opts.secret)
  const file = join(opts.dataDir, 'keys', 'access-token.secret')
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true })
    try {
      writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600, flag: 'wx' })
      chmodSync(file, 0o600)
    } catch (err) {
      // Another process of the same data folder wrote it first: use theirs.
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err
    }
  }
  return new TextEncoder().encode(readFileSync(file, 'utf8').trim())
}

export async function signAccessToken(config: AccessTokenConfig, principal: Principal, now = new Date()): Promise<{ token: string; expiresIn: number }> {
  const iat = Math.floor(now.getTime() / 1000)
  const token = await new SignJWT({ roles: principal.roles })
    .setProtectedHeader({ alg: ACCESS_ALG, typ: 'at+jwt' })
    .setSubject(principal.userId)
    .setIssuer(config.issuer)
    .setAudience(ACCESS_AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + config.ttlSeconds)
    .sign(config.key)
  return { token, expiresIn: config.ttlSeconds }
}

const claims = z.object({ sub: z.string().min(1), roles: z.array(z.enum(roles)) })

/** The secret as a WebCrypto key, imported once per secret: given the bytes, jose imports them on every call. */
const verifyKeys = new WeakMap<Uint8Array<ArrayBuffer>, Promise<CryptoKey>>()
function verifyKey(secret: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  let key = verifyKeys.get(secret)
  if (!key) {
    key = crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
    verifyKeys.set(secret, key)
  }
  return key
}

const CLOCK_TOLERANCE_SECONDS = 5
/** Most tokens kept verified per configuration (oldest out first). */
export const VERIFIED_MAX = 10_000
/**
 * Tokens already verified, per configuration (see lib/verified-tokens.ts; verifying was
 * about a tenth of the API's thread under load, 3 December). An access token is revoked
 * only by expiring (refresh tokens are what logout and rotation revoke), so a kept one
 * answers as a verified one would.
 */
const verified = new WeakMap<AccessTokenConfig, VerifiedTokens<Principal>>()

/** Verifies an access token; returns the principal or a reason it was refused. */
export async function verifyAccessToken(config: AccessTokenConfig, token: string, now = Date.now()): Promise<{ ok: true; principal: Principal } | { ok: false; reason: string }> {
  let known = verified.get(config)
  if (!known) verified.set(config, (known = verifiedTokens<Principal>(VERIFIED_MAX)))
  const hit = known.get(token, now)
  if (hit) return { ok: true, principal: hit }
  try {
    const { payload } = await jwtVerify(token, await verifyKey(config.key), {
      algorithms: [ACCESS_ALG],
      issuer: config.issuer,
      audience: ACCESS_AUDIENCE,
      typ: 'at+jwt',
      requiredClaims: ['exp', 'iat', 'sub'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(now),
    })
    const parsed = claims.safeParse(payload)
    if (!parsed.success) return { ok: false, reason: 'access token claims are not valid' }
    // Shared by every request with this token: frozen, so that none can change it for the others.
    const principal: Principal = Object.freeze({ userId: parsed.data.sub, roles: Object.freeze([...parsed.data.roles]) as Role[] })
    known.keep(token, principal, (payload.exp! + CLOCK_TOLERANCE_SECONDS) * 1000)
    return { ok: true, principal }
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { ok: false, reason: 'access token expired; refresh it' }
    return { ok: false, reason: 'access token is not valid' }
  }
}
