import { readFileSync } from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'

export { Redis }

/** Where Redis is: a `redis://` URL, or the unix socket of the private server. */
export type RedisTarget = { url: string } | { path: string }

/**
 * Creates an ioredis client that fails fast instead of queueing commands while
 * Redis is unreachable, so callers can answer 503 at once.
 *
 * @example
 * const redis = createRedis({ url: 'redis://127.0.0.1:6379' })
 */
export function createRedis(target: RedisTarget, options: RedisOptions = {}): Redis {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
    lazyConnect: false,
    ...options,
  }
  return 'url' in target ? new Redis(target.url, common) : new Redis({ ...common, path: target.path })
}

/** Resolves once the client is connected (or rejects after `timeoutMs`). */
export async function waitForRedis(redis: Redis, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (redis.status === 'ready') {
        await redis.ping()
        return
      }
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`Redis not reachable after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * A Lua script: its file, files of shared local functions put before its text, and how
 * many of its arguments are keys (omitted: the caller passes the count first).
 */
export type ScriptSpec = { file: string; include?: string[]; numberOfKeys?: number }

/**
 * Registers `.lua` files as commands on the client with `defineCommand`
 * (EVALSHA with EVAL fallback), so each script is sent once per connection.
 */
export function defineScripts<T extends Record<string, ScriptSpec>>(redis: Redis, specs: T): void {
  for (const [name, spec] of Object.entries(specs)) {
    if (typeof (redis as unknown as Record<string, unknown>)[name] === 'function') continue
    redis.defineCommand(name, { lua: scriptSource(spec), ...(spec.numberOfKeys === undefined ? {} : { numberOfKeys: spec.numberOfKeys }) })
  }
}

/** The text a script runs as: its included files, then its own. */
export function scriptSource(spec: ScriptSpec): string {
  return [...(spec.include ?? []), spec.file].map((f) => readFileSync(f, 'utf8')).join('\n')
}
