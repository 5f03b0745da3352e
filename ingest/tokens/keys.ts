import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import { z } from 'zod'
import type { Settings } from '../../lib/config.ts'

/** The one algorithm playback tokens use; tokens with any other `alg` are refused. */
export const PLAYBACK_ALG = 'ES256'

export type PlaybackKeys = {
  /** Signs new tokens (the first key of the set with a private part), if any. */
  signer?: { kid: string; key: CryptoKey }
  /** Every key of the set by `kid`: all of them verify, so keys can rotate. */
  verifiers: Map<string, CryptoKey>
}

const jwkSchema = z.looseObject({ kty: z.literal('EC'), crv: z.literal('P-256'), kid: z.string().min(1), x: z.string(), y: z.string(), d: z.string().optional() })
const jwksSchema = z.object({ keys: z.array(jwkSchema).min(1) })

/** Generates a JWK set with one fresh ES256 key. */
export async function generatePlaybackJwks(kid = `k${Date.now().toString(36)}`): Promise<{ keys: JWK[] }> {
  const { privateKey } = await generateKeyPair(PLAYBACK_ALG, { extractable: true })
  const jwk = await exportJWK(privateKey)
  return { keys: [{ ...jwk, kid, alg: PLAYBACK_ALG, use: 'sig' }] }
}

/** Imports a JWK set (JSON text); the first key with a private part signs. */
export async function importPlaybackJwks(text: string, source: string): Promise<PlaybackKeys> {
  let parsed: z.infer<typeof jwksSchema>
  try {
    parsed = jwksSchema.parse(JSON.parse(text))
  } catch (err) {
    throw new Error(`${source}: not a JWK set of P-256 keys with kid (${err instanceof Error ? err.message.split('\n')[0] : err})`)
  }
  const verifiers = new Map<string, CryptoKey>()
  let signer: PlaybackKeys['signer']
  for (const jwk of parsed.keys) {
    const { d, ...pub } = jwk
    if (verifiers.has(jwk.kid)) throw new Error(`${source}: kid ${jwk.kid} appears twice`)
    verifiers.set(jwk.kid, (await importJWK(pub as JWK, PLAYBACK_ALG)) as CryptoKey)
    if (d !== undefined && signer === undefined) signer = { kid: jwk.kid, key: (await importJWK(jwk as JWK, PLAYBACK_ALG)) as CryptoKey }
  }
  return { signer, verifiers }
}

/**
 * Loads the playback keys from PLAYBACK_JWKS, PLAYBACK_JWKS_FILE, or (local mode)
 * `DATA_DIR/keys/playback-jwks.json`, generated once on first use.
 */
export async function loadPlaybackKeys(settings: Pick<Settings, 'PLAYBACK_JWKS' | 'PLAYBACK_JWKS_FILE' | 'dataDir'>): Promise<PlaybackKeys> {
  if (settings.PLAYBACK_JWKS) return importPlaybackJwks(settings.PLAYBACK_JWKS, 'PLAYBACK_JWKS')
  const file = settings.PLAYBACK_JWKS_FILE ?? join(settings.dataDir, 'keys', 'playback-jwks.json')
  if (!existsSync(file)) {
    if (settings.PLAYBACK_JWKS_FILE) throw new Error(`PLAYBACK_JWKS_FILE: ${file} does not exist`)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, JSON.stringify(await generatePlaybackJwks(), null, 2), { mode: 0o600, flag: 'wx' })
    chmodSync(file, 0o600)
  }
  return importPlaybackJwks(readFileSync(file, 'utf8'), file)
}
