/**
 * `target` with each call of its method `name` recorded (its first argument) in `calls`,
 * then passed on: what a test counts of a real client's writes, without a mock.
 *
 * @example
 * const writes: unknown[] = []
 * const cache = countingCalls(createAggregateCache(redis.client), 'set', writes)
 */
export function countingCalls<T extends object>(target: T, name: keyof T & string, calls: unknown[]): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const value = Reflect.get(t, prop, receiver) as unknown
      if (prop !== name || typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls.push(args[0])
        return (value as (...a: unknown[]) => unknown).apply(t, args)
      }
    },
  })
}
