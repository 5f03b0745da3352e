import { createHash, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { defineScripts, type Redis } from '../../lib/redis.ts'

/**
 * Opaque refresh tokens `<family>.<secret>`. Only a hash of the secret is stored
 * in Redis; every use rotates the token, and presenting a used one revokes the
 * whole family (all tokens descended from the same login). Every key of a family
 * shares one hash tag, so the rotation script is atomic on Redis Cluster too.
 */
const keys = {
  family: (family: string) => `cs:{rt:${family}}:fam`,
  token: (family: string, secret: string) => `cs:{rt:${family}}:t:${createHash('sha256').update(secret).digest('hex')}`,
}

const scripts = { csRefreshRotate: { file: fileURLToPath(new URL('./refresh-rotate.lua', import.meta.url)), numberOfKeys: 3 } }

const TOKEN = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/

function parse(token: string): { family: string; secret: string } | undefined {
  const m = TOKEN.exec(token)
  return m ? { family: m[1]!, secret: m[2]! } : undefined
}

const random = (bytes: number) => randomBytes(bytes).toString('base64url')

export type RotateResult = { status: 'ok'; userId: string; token: string } | { status: 'reuse' | 'revoked' | 'unknown' }

export function createRefreshTokens(redis: Redis, ttlSeconds: number) {
  defineScripts(redis, scripts)
  const rotateScript: unknown = Reflect.get(redis, 'csRefreshRotate')
  if (typeof rotateScript !== 'function') throw new Error('refresh rotation script is not loaded')

  return {
    ttlSeconds,
    /** Starts a family for a fresh login and returns its first token. */
    async issue(userId: string): Promise<string> {
      const family = random(16)
      const secret = random(32)
      await redis.multi().set(keys.family(family), userId, 'EX', ttlSeconds).set(keys.token(family, secret), 'active', 'EX', ttlSeconds).exec()
      return `${family}.${secret}`
    },
    /** Exchanges a token for its successor; a used token revokes its family. */
    async rotate(token: string): Promise<RotateResult> {
      const parsed = parse(token)
      if (!parsed) return { status: 'unknown' }
      const secret = random(32)
      const result: unknown = await rotateScript.call(redis, keys.family(parsed.family), keys.token(parsed.family, parsed.secret), keys.token(parsed.family, secret), ttlSeconds)
      if (!Array.isArray(result) || typeof result[0] !== 'string') throw new Error('unexpected reply from the rotation script')
      const [status, userId] = result
      if (status === 'ok' && typeof userId === 'string') return { status: 'ok', userId, token: `${parsed.family}.${secret}` }
      if (status === 'reuse' || status === 'revoked' || status === 'unknown') return { status }
      throw new Error(`unexpected reply from the rotation script: ${String(status)}`)
    },
    /** Revokes the family of a token it knows; returns whether it did. */
    async revoke(token: string): Promise<boolean> {
      const parsed = parse(token)
      if (!parsed) return false
      if ((await redis.exists(keys.token(parsed.family, parsed.secret))) === 0) return false
      return (await redis.del(keys.family(parsed.family))) === 1
    },
  }
}

export type RefreshTokens = ReturnType<typeof createRefreshTokens>
