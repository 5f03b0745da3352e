/**
 * Tokens already verified, with what their verification gave, each until it stops being
 * valid (epoch ms): a client sends the same token with every request until it gets a new
 * one, and its signature, claims and expiry were checked the first time. At most `max`
 * are kept, the oldest out first.
 *
 * @example
 * const verified = verifiedTokens<Claims>(50_000)
 * const hit = verified.get(token, Date.now()) // undefined: verify it, then
 * verified.keep(token, claims, (claims.exp + toleranceSeconds) * 1000)
 */
export function verifiedTokens<T>(max: number) {
  const kept = new Map<string, { value: T; until: number }>()
  return {
    /** What the token's verification gave, while it is still valid at `now`. */
    get(token: string, now: number): T | undefined {
      const hit = kept.get(token)
      if (hit && now < hit.until) return hit.value
      if (hit) kept.delete(token)
      return undefined
    },
    keep(token: string, value: T, until: number): void {
      if (kept.size >= max) kept.delete(kept.keys().next().value as string)
      kept.set(token, { value, until })
    },
    /** Drops the token: a later use of it is verified again. */
    forget(token: string): void {
      kept.delete(token)
    },
    /** How many tokens are kept. */
    get size(): number {
      return kept.size
    },
  }
}

export type VerifiedTokens<T> = ReturnType<typeof verifiedTokens<T>>
