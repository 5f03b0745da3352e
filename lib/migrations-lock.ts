import { SettlementError } from '../jobs/settlement/errors.ts'
import { acquireSettlementLock } from '../jobs/settlement/lock.ts'
import { MigrationError } from '../migrations/runner.ts'
import type { Redis } from './redis.ts'

/** The lock processes take in Redis to apply the migrations of one ClickHouse server. */
export const MIGRATIONS_LOCK_KEY = 'cs:{migrations}:lock'

/**
 * Runs `fn` (applying the migrations) holding a lock in Redis, taken as the settlement's is
 * (SET NX with an expiry, renewed every third of `ttlMs` while held, so that a crashed
 * holder's lock lapses): processes that start together against one ClickHouse server apply
 * the migrations one at a time, each finding what the one before it applied. A code step is
 * safe to run again after a crash, not twice at once (0066 rebuilds `videos` through a table
 * of a fixed name: a second process starting it would drop the first one's copy). Waits for
 * the lock up to `waitMs` (a migration may rewrite large tables), then throws. Embedded, one
 * process owns the data folder, and no lock is needed.
 */
export async function withMigrationsLock<T>(redis: Redis, fn: () => Promise<T>, opts: { ttlMs?: number; waitMs?: number; pollMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.waitMs ?? 30 * 60_000)
  for (;;) {
    const lock = await acquireSettlementLock(redis, { ttlMs: opts.ttlMs ?? 30_000, key: MIGRATIONS_LOCK_KEY }).catch((err: unknown) => {
      if (err instanceof SettlementError && err.code === 'LOCKED') return undefined
      throw err
    })
    if (lock) {
      try {
        return await fn()
      } finally {
        await lock.release()
      }
    }
    if (Date.now() > deadline)
      throw new MigrationError(`another process has held the migrations lock (${MIGRATIONS_LOCK_KEY} in Redis: ${String(await redis.get(MIGRATIONS_LOCK_KEY))}) for longer than this one waits; start again once it has finished`)
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250))
  }
}
