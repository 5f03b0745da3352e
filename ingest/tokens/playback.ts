import { errors as joseErrors, jwtVerify, SignJWT, type JWTHeaderParameters } from 'jose'
import { z } from 'zod'
import { PLAYBACK_ALG, type PlaybackKeys } from './keys.ts'
import { verifiedTokens } from '../../lib/verified-tokens.ts'

/** Audience every playback token is issued for. */
export const PLAYBACK_AUDIENCE = 'ingest'

const id = z.string().min(1).max(128)

/** What a playback token binds: the edge takes video, viewer and session from here, never from the body. */
export const playbackClaimsSchema = z.object({
  sub: id.describe('viewer id (user id or anonymous device id)'),
  vid: id.describe('video id'),
  cid: id.describe("the video's creator id"),
  sid: id.describe('playback session id'),
  ads: z.array(id).max(32).default([]).describe('ad ids served in this session'),
  dur: z.number().int().min(0).max(7 * 24 * 3600 * 1000).describe('video duration (ms)'),
  iat: z.number().int(),
  exp: z.number().int(),
})

export type PlaybackClaims = z.infer<typeof playbackClaimsSchema>
export type PlaybackGrant = { viewerId: string; videoId: string; creatorId: string; sessionId: string; adIds: string[]; durationMs: number }

/**
 * Signs a playback token with the active key.
 *
 * @example
 * const { token, expiresAt } = await signPlaybackToken(keys, { issuer: 'cs', ttlSeconds: 3600 }, grant)
 */
export async function signPlaybackToken(
  keys: PlaybackKeys,
  opts: { issuer: string; ttlSeconds: number; now?: Date },
  grant: PlaybackGrant,
): Promise<{ token: string; expiresAt: Date }> {
  if (!keys.signer) throw new Error('no playback signing key is configured (the key set holds public keys only)')
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000)
  const exp = now + opts.ttlSeconds
  const token = await new SignJWT({ vid: grant.videoId, cid: grant.creatorId, sid: grant.sessionId, ads: grant.adIds, dur: grant.durationMs })
    .setProtectedHeader({ alg: PLAYBACK_ALG, kid: keys.signer.kid, typ: 'JWT' })
    .setSubject(grant.viewerId)
    .setIssuer(opts.issuer)
    .setAudience(PLAYBACK_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(keys.signer.key)
  return { token, expiresAt: new Date(exp * 1000) }
}

export class PlaybackTokenError extends Error {
  override name = 'PlaybackTokenError'
}

/**
 * Verifies playback tokens: algorithm pinned to ES256, key chosen by `kid` among
 * the configured set, `iss`, `aud`, `exp` checked with a small clock tolerance.
 * Verified tokens are cached (bounded) until they expire, since a session sends
 * many batches with the same token; `forget` drops one whose session has ended,
 * `kept` counts them.
 */
export function createPlaybackVerifier(keys: PlaybackKeys, opts: { issuer: string; clockToleranceSeconds: number; cacheSize?: number }) {
  const verified = verifiedTokens<PlaybackClaims>(opts.cacheSize ?? 50_000)
  const getKey = (header: JWTHeaderParameters) => {
    if (header.alg !== PLAYBACK_ALG) throw new PlaybackTokenError(`algorithm ${String(header.alg)} is not accepted`)
    if (!header.kid) throw new PlaybackTokenError('token has no kid')
    const key = keys.verifiers.get(header.kid)
    if (!key) throw new PlaybackTokenError(`unknown key id ${header.kid}`)
    return key
  }
  const verifyPlaybackToken = async (token: string, now = Date.now()): Promise<PlaybackClaims> => {
    const hit = verified.get(token, now)
    if (hit) return hit
    let payload: unknown
    try {
      ;({ payload } = await jwtVerify(token, getKey, {
        algorithms: [PLAYBACK_ALG],
        issuer: opts.issuer,
        audience: PLAYBACK_AUDIENCE,
        clockTolerance: opts.clockToleranceSeconds,
        requiredClaims: ['exp', 'iat', 'sub'],
        currentDate: new Date(now),
      }))
    } catch (err) {
      if (err instanceof PlaybackTokenError) throw err
      if (err instanceof joseErrors.JWTExpired) throw new PlaybackTokenError('token expired')
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new PlaybackTokenError(`token claim ${err.claim} is not valid: ${err.reason}`)
      if (err instanceof joseErrors.JOSEError) throw new PlaybackTokenError(`token is not valid (${err.code})`)
      throw new PlaybackTokenError('token is not valid')
    }
    const claims = playbackClaimsSchema.safeParse(payload)
    if (!claims.success) throw new PlaybackTokenError(`token claims are not valid: ${claims.error.issues[0]?.path.join('.')} ${claims.error.issues[0]?.message}`)
    verified.keep(token, claims.data, (claims.data.exp + opts.clockToleranceSeconds) * 1000)
    return claims.data
  }
  return Object.assign(verifyPlaybackToken, {
    forget: (token: string) => verified.forget(token),
    kept: () => verified.size,
  })
}

export type PlaybackVerifier = ReturnType<typeof createPlaybackVerifier>
