import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Result } from 'ioredis'
import { defineScripts, type Redis } from '../../lib/redis.ts'
import { SettlementError } from './errors.ts'
import type { SettlementFence } from './version.ts'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    settlementLockRelease(key: string, value: string): Result<number, Context>
    settlementLockExtend(key: string, value: string, ttlMs: number): Result<number, Context>
  }
}

/** The one lock every settlement writer takes (CLI, scheduler, HTTP), in whatever process. */
export const SETTLEMENT_LOCK_KEY = 'cs:settlement:lock'

const scripts = {
  settlementLockRelease: { file: fileURLToPath(new URL('./lock-release.lua', import.meta.url)), numberOfKeys: 1 },
  settlementLockExtend: { file: fileURLToPath(new URL('./lock-extend.lua', import.meta.url)), numberOfKeys: 1 },
}

export type SettlementLock = {
  /** Who holds it, as stored in Redis. */
  readonly holder: string
  /** Its key and the value this runner set: what a write checks to be made only while the lock is held. */
  readonly fence: SettlementFence
  /** Throws LOCK_LOST unless Redis still holds this runner's token: checked right before a commit. */
  assertHeld(): Promise<void>
  /** Stops renewing and deletes the lock if it is still this runner's. */
  release(): Promise<void>
}

/**
 * Takes the settlement lock (SET NX with an expiry) and renews it every third of
 * `ttlMs` while held, so a crashed runner's lock expires on its own.
 *
 * @throws SettlementError LOCKED when another runner holds it
 * @example
 * const lock = await acquireSettlementLock(redis, { ttlMs: 60_000 })
 * try { ... await lock.assertHeld() ... } finally { await lock.release() }
 */
export async function acquireSettlementLock(redis: Redis, opts: { ttlMs: number; key?: string }): Promise<SettlementLock> {
  defineScripts(redis, scripts)
  const key = opts.key ?? SETTLEMENT_LOCK_KEY
  const holder = `${hostname()} pid ${process.pid} since ${new Date().toISOString()}`
  const value = JSON.stringify({ token: randomUUID(), holder })
  const ok = await redis.set(key, value, 'PX', opts.ttlMs, 'NX')
  if (ok !== 'OK') {
    const current = await redis.get(key)
    throw new SettlementError('LOCKED', `another settlement run is in progress (${describeHolder(current)}); try again when it has finished`)
  }
  let lost = false
  let lastRenewed = Date.now()
  const timer = setInterval(() => {
    redis.settlementLockExtend(key, value, opts.ttlMs).then(
      (n) => {
        if (n === 1) lastRenewed = Date.now()
        else lost = true
      },
      () => {
        if (Date.now() - lastRenewed >= opts.ttlMs) lost = true
      },
    )
  }, Math.max(100, Math.floor(opts.ttlMs / 3)))
  timer.unref?.()
  return {
    holder,
    fence: { key, value },
    async assertHeld() {
      if (lost || (await redis.get(key)) !== value)
        throw new SettlementError('LOCK_LOST', 'the settlement lock expired during the run (was the engine stalled?); nothing was committed, run it again')
    },
    async release() {
      clearInterval(timer)
      await redis.settlementLockRelease(key, value).catch(() => 0)
    },
  }
}

function describeHolder(value: string | null): string {
  if (value === null) return 'it has just finished'
  try {
    const parsed: unknown = JSON.parse(value)
    if (typeof parsed === 'object' && parsed !== null && 'holder' in parsed && typeof parsed.holder === 'string') return `held by ${parsed.holder}`
  } catch {
    /* a foreign value: say nothing about it */
  }
  return 'held by another runner'
}
