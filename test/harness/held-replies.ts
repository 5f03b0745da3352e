import type { Redis } from '../../lib/redis.ts'

/**
 * A real Redis client whose replies to the named commands (and to `exec` of its `multi`
 * transactions, with 'exec') are held until `release()`: each such command is sent at
 * once and Redis runs it; only its caller waits for the reply. What a test uses to see
 * that a caller does not wait for a write, without a mock.
 *
 * @example
 * const held = holdingReplies(redis, ['set', 'exec'])
 * const cache = createAggregateCache(held.client)
 */
export function holdingReplies(redis: Redis, names: string[]) {
  const gates: (() => void)[] = []
  let sent = 0
  const hold = async <T>(reply: Promise<T>): Promise<T> => {
    sent++
    // Settled now or later, the reply is read only once released (no unhandled rejection meanwhile).
    const outcome = reply.then((value) => ({ value }), (error: unknown) => ({ error }))
    await new Promise<void>((r) => gates.push(r))
    const got = await outcome
    if ('error' in got) throw got.error
    return got.value
  }
  const holding = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, key) {
        const v = Reflect.get(t, key, t) as unknown
        if (typeof v !== 'function') return v
        return (...args: unknown[]) => {
          const out = (v as (...a: unknown[]) => unknown).apply(t, args)
          if (out === t) return proxy(t) // a chained call of a transaction
          if (key === 'multi') return proxy(out as object)
          return typeof key === 'string' && names.includes(key) ? hold(out as Promise<unknown>) : out
        }
      },
    })
  const proxies = new WeakMap<object, object>()
  const proxy = <T extends object>(t: T): T => {
    let p = proxies.get(t) as T | undefined
    if (!p) proxies.set(t, (p = holding(t)))
    return p
  }
  return {
    client: proxy(redis),
    /** How many held commands were sent. */
    get sent() {
      return sent
    },
    /** Hands every held reply to its caller. */
    release() {
      for (const open of gates.splice(0)) open()
    },
  }
}
