import { readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { base64url, decodeProtectedHeader, importJWK, SignJWT, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../../test/harness/engines.ts'
import { generatePlaybackJwks, importPlaybackJwks, loadPlaybackKeys, type PlaybackKeys } from './keys.ts'
import { createPlaybackVerifier, PLAYBACK_AUDIENCE, PlaybackTokenError, signPlaybackToken, type PlaybackGrant } from './playback.ts'

const ISSUER = 'creator-settlement-test'
const TOLERANCE = 30
const NOW = new Date('2026-03-01T12:00:00Z')
const grant: PlaybackGrant = { viewerId: 'viewer-1', videoId: 'video-1', creatorId: 'creator-1', sessionId: 'session-1', adIds: ['ad-1'], durationMs: 600_000 }

let keys: PlaybackKeys
let jwks: { keys: JWK[] }

beforeAll(async () => {
  jwks = await generatePlaybackJwks('kid-current')
  keys = await importPlaybackJwks(JSON.stringify(jwks), 'test')
})

const verifier = (k: PlaybackKeys = keys) => createPlaybackVerifier(k, { issuer: ISSUER, clockToleranceSeconds: TOLERANCE })
const sign = async (k: PlaybackKeys = keys, opts: { issuer?: string; ttlSeconds?: number; now?: Date } = {}) =>
  (await signPlaybackToken(k, { issuer: opts.issuer ?? ISSUER, ttlSeconds: opts.ttlSeconds ?? 3600, now: opts.now ?? NOW }, grant)).token

/** jose's allow-list and the verifier's own pin both refuse; either may answer first. */
const ALG_REFUSED = /is not accepted|ERR_JOSE_ALG_NOT_ALLOWED/

const seconds = (d: Date) => Math.floor(d.getTime() / 1000)
const encode = (value: unknown) => base64url.encode(JSON.stringify(value))

/** Claims as signPlaybackToken writes them, for hand-made tokens. */
const claims = (overrides: Record<string, unknown> = {}) => ({
  sub: grant.viewerId,
  vid: grant.videoId,
  cid: grant.creatorId,
  sid: grant.sessionId,
  ads: grant.adIds,
  dur: grant.durationMs,
  iss: ISSUER,
  aud: PLAYBACK_AUDIENCE,
  iat: seconds(NOW),
  exp: seconds(NOW) + 3600,
  ...overrides,
})

/** Signs arbitrary claims with the real signing key, bypassing signPlaybackToken's fixed shape. */
async function signRaw(payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'ES256', kid: 'kid-current' }) {
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', ...header }).sign(keys.signer!.key)
}

async function expectRejected(token: string, message: RegExp, now = NOW.getTime()) {
  const err = await verifier()(token, now).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(PlaybackTokenError)
  expect((err as Error).message).toMatch(message)
}

describe('playback tokens: happy path', () => {
  it('accepts a valid token and returns its claims', async () => {
    const token = await sign()
    const c = await verifier()(token, NOW.getTime())
    expect(c).toMatchObject({ sub: 'viewer-1', vid: 'video-1', cid: 'creator-1', sid: 'session-1', ads: ['ad-1'], dur: 600_000 })
    expect(c.exp - c.iat).toBe(3600)
  })

  it('signs with ES256 and the signer kid, and reports when the token expires', async () => {
    const { token, expiresAt } = await signPlaybackToken(keys, { issuer: ISSUER, ttlSeconds: 120, now: NOW }, grant)
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: 'kid-current' })
    expect(expiresAt.getTime()).toBe(NOW.getTime() + 120_000)
  })

  it('accepts an expired token within the clock tolerance', async () => {
    const token = await sign(keys, { ttlSeconds: 60 })
    const c = await verifier()(token, NOW.getTime() + (60 + TOLERANCE - 1) * 1000)
    expect(c.vid).toBe('video-1')
  })
})

describe('playback tokens: attacks', () => {
  it('rejects a token whose alg is none', async () => {
    const token = `${encode({ alg: 'none', typ: 'JWT', kid: 'kid-current' })}.${encode(claims())}.`
    await expectRejected(token, ALG_REFUSED)
  })

  it('rejects an unsigned token that keeps alg ES256 but drops the signature', async () => {
    const valid = await sign()
    const [h, p] = valid.split('.')
    await expectRejected(`${h}.${p}.`, /not valid/)
  })

  it('rejects a token signed by another ES256 key with the same kid', async () => {
    const other = await importPlaybackJwks(JSON.stringify(await generatePlaybackJwks('kid-current')), 'attacker')
    await expectRejected(await sign(other), /not valid \(ERR_JWS_SIGNATURE_VERIFICATION_FAILED\)/)
  })

  it('rejects a token that carries its own signing key in a jwk header', async () => {
    const attacker = await generatePlaybackJwks('kid-current')
    const { d: _d, ...attackerPublic } = attacker.keys[0]!
    const attackerKey = (await importJWK(attacker.keys[0]!, 'ES256')) as CryptoKey
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'kid-current', jwk: attackerPublic }).sign(attackerKey)
    await expectRejected(token, /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/)
  })

  it('rejects an HS256 token keyed with the public JWK (algorithm confusion)', async () => {
    const { d: _d, ...publicJwk } = jwks.keys[0]!
    const secrets = [
      new TextEncoder().encode(JSON.stringify(publicJwk)),
      base64url.decode(publicJwk.x!),
      new TextEncoder().encode(publicJwk.x!),
    ]
    for (const secret of secrets) {
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: 'kid-current' }).sign(secret)
      await expectRejected(token, ALG_REFUSED)
    }
  })

  it('rejects an HS256 token keyed with the public key in SPKI form (algorithm confusion)', async () => {
    const { d: _d, ...publicJwk } = jwks.keys[0]!
    const pub = (await importJWK(publicJwk, 'ES256')) as CryptoKey
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pub))
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: 'kid-current' }).sign(spki)
    await expectRejected(token, ALG_REFUSED)
  })

  it('rejects a token expired beyond the clock tolerance', async () => {
    const token = await sign(keys, { ttlSeconds: 60 })
    await expectRejected(token, /token expired/, NOW.getTime() + (60 + TOLERANCE + 1) * 1000)
  })

  it('rejects a token once it expires even after it was verified and cached', async () => {
    const verify = verifier()
    const token = await sign(keys, { ttlSeconds: 60 })
    await verify(token, NOW.getTime())
    const err = await verify(token, NOW.getTime() + (60 + TOLERANCE + 1) * 1000).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PlaybackTokenError)
    expect((err as Error).message).toMatch(/token expired/)
  })

  it('verifies a forgotten token again, and counts the tokens it keeps', async () => {
    const known = { ...keys, verifiers: new Map(keys.verifiers) }
    const verify = verifier(known)
    const token = await sign(keys, { ttlSeconds: 60 })
    await verify(token, NOW.getTime())
    expect(verify.kept()).toBe(1)
    // its key withdrawn: answered from memory while kept, verified in full once forgotten
    known.verifiers.clear()
    expect((await verify(token, NOW.getTime())).sub).toBeTruthy()
    verify.forget(token)
    expect(verify.kept()).toBe(0)
    await expect(verify(token, NOW.getTime())).rejects.toThrow(/unknown key id/)
    expect(verify.kept()).toBe(0)
  })

  it('rejects a token for another audience', async () => {
    await expectRejected(await signRaw(claims({ aud: 'analytics' })), /claim aud is not valid/)
  })

  it('rejects a token without an audience', async () => {
    const { aud: _aud, ...rest } = claims()
    await expectRejected(await signRaw(rest), /claim aud is not valid/)
  })

  it('rejects a token from another issuer', async () => {
    await expectRejected(await sign(keys, { issuer: 'someone-else' }), /claim iss is not valid/)
  })

  it('rejects a token whose kid is unknown', async () => {
    await expectRejected(await signRaw(claims(), { kid: 'kid-unknown' }), /unknown key id kid-unknown/)
  })

  it('rejects a token without a kid', async () => {
    await expectRejected(await signRaw(claims(), {}), /token has no kid/)
  })

  it('rejects a token whose payload was tampered with', async () => {
    const [h, , s] = (await sign()).split('.')
    await expectRejected(`${h}.${encode(claims({ vid: 'video-of-someone-else' }))}.${s}`, /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/)
  })

  it('rejects a token whose header was tampered with', async () => {
    const [, p, s] = (await sign()).split('.')
    await expectRejected(`${encode({ alg: 'ES256', kid: 'kid-current', typ: 'JWT', x: 1 })}.${p}.${s}`, /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/)
  })

  it('rejects a token without a video id', async () => {
    const { vid: _vid, ...rest } = claims()
    await expectRejected(await signRaw(rest), /claims are not valid: vid/)
  })

  it('rejects a token without a creator id, session id or duration', async () => {
    for (const claim of ['cid', 'sid', 'dur'] as const) {
      const { [claim]: _drop, ...rest } = claims()
      await expectRejected(await signRaw(rest), new RegExp(`claims are not valid: ${claim}`))
    }
  })

  it('rejects a token without a subject, expiry or issue time', async () => {
    for (const claim of ['sub', 'exp', 'iat'] as const) {
      const { [claim]: _drop, ...rest } = claims()
      await expectRejected(await signRaw(rest), new RegExp(`claim ${claim} is not valid`))
    }
  })

  it('rejects a token that is not a JWT at all', async () => {
    for (const garbage of ['', 'abc', 'a.b.c', 'a.b']) await expectRejected(garbage, /./)
  })
})

describe('playback keys: rotation and storage', () => {
  it('verifies tokens of the old kid after rotation and signs new tokens with the first key', async () => {
    const oldJwks = await generatePlaybackJwks('kid-old')
    const newJwks = await generatePlaybackJwks('kid-new')
    const oldKeys = await importPlaybackJwks(JSON.stringify(oldJwks), 'old')
    const oldToken = await sign(oldKeys)

    const rotated = await importPlaybackJwks(JSON.stringify({ keys: [...newJwks.keys, ...oldJwks.keys] }), 'rotated')
    expect(rotated.signer?.kid).toBe('kid-new')
    expect([...rotated.verifiers.keys()].sort()).toEqual(['kid-new', 'kid-old'])

    const verify = verifier(rotated)
    expect((await verify(oldToken, NOW.getTime())).vid).toBe('video-1')
    const newToken = await sign(rotated)
    expect(decodeProtectedHeader(newToken).kid).toBe('kid-new')
    expect((await verify(newToken, NOW.getTime())).vid).toBe('video-1')
  })

  it('keeps verifying a retired key whose private part was removed', async () => {
    const oldJwks = await generatePlaybackJwks('kid-old')
    const newJwks = await generatePlaybackJwks('kid-new')
    const oldToken = await sign(await importPlaybackJwks(JSON.stringify(oldJwks), 'old'))
    const { d: _d, ...oldPublic } = oldJwks.keys[0]!
    const rotated = await importPlaybackJwks(JSON.stringify({ keys: [oldPublic, ...newJwks.keys] }), 'rotated')
    expect(rotated.signer?.kid).toBe('kid-new')
    expect((await verifier(rotated)(oldToken, NOW.getTime())).vid).toBe('video-1')
  })

  it('cannot sign with a key set that holds public keys only', async () => {
    const { d: _d, ...publicJwk } = jwks.keys[0]!
    const publicOnly = await importPlaybackJwks(JSON.stringify({ keys: [publicJwk] }), 'public')
    expect(publicOnly.signer).toBeUndefined()
    await expect(sign(publicOnly)).rejects.toThrow(/public keys only/)
    expect((await verifier(publicOnly)(await sign(), NOW.getTime())).vid).toBe('video-1')
  })

  it('refuses a key set with the same kid twice, or with keys that are not P-256', async () => {
    const a = await generatePlaybackJwks('same')
    const b = await generatePlaybackJwks('same')
    await expect(importPlaybackJwks(JSON.stringify({ keys: [...a.keys, ...b.keys] }), 'dup')).rejects.toThrow(/kid same appears twice/)
    await expect(importPlaybackJwks(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h' }] }), 'oct')).rejects.toThrow(/not a JWK set/)
    await expect(importPlaybackJwks('not json', 'text')).rejects.toThrow(/not a JWK set/)
  })

  describe('loadPlaybackKeys in local mode', () => {
    let dataDir: string
    beforeAll(() => {
      dataDir = tempDir('cs-keys-')
    })
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

    it('generates the key file once under DATA_DIR/keys with mode 0600 and reuses it', async () => {
      const settings = { PLAYBACK_JWKS: undefined, PLAYBACK_JWKS_FILE: undefined, dataDir }
      const first = await loadPlaybackKeys(settings)
      const file = join(dataDir, 'keys', 'playback-jwks.json')
      expect(statSync(file).mode & 0o777).toBe(0o600)
      const text = readFileSync(file, 'utf8')
      expect(first.signer).toBeDefined()

      const second = await loadPlaybackKeys(settings)
      expect(readFileSync(file, 'utf8')).toBe(text)
      expect(second.signer?.kid).toBe(first.signer?.kid)
      // A token signed before a restart still verifies after it.
      const token = await sign(first)
      expect((await verifier(second)(token, NOW.getTime())).vid).toBe('video-1')
    })

    it('prefers PLAYBACK_JWKS over the file and refuses a PLAYBACK_JWKS_FILE that does not exist', async () => {
      const fromEnv = await loadPlaybackKeys({ PLAYBACK_JWKS: JSON.stringify(jwks), PLAYBACK_JWKS_FILE: undefined, dataDir })
      expect(fromEnv.signer?.kid).toBe('kid-current')
      await expect(loadPlaybackKeys({ PLAYBACK_JWKS: undefined, PLAYBACK_JWKS_FILE: join(dataDir, 'missing.json'), dataDir })).rejects.toThrow(
        /PLAYBACK_JWKS_FILE: .*missing\.json does not exist/,
      )
    })
  })
})
