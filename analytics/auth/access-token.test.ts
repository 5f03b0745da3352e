import { expect, it } from 'vitest'
import { signAccessToken, verifyAccessToken, type AccessTokenConfig } from './access-token.ts'

const config: AccessTokenConfig = { key: new TextEncoder().encode('x'.repeat(48)), issuer: 'cs-test', ttlSeconds: 60 }

it('answers a token seen before as verified, until it expires (with the clock tolerance), never after', async () => {
  const t0 = new Date('2026-12-03T12:00:00Z')
  const { token } = await signAccessToken(config, { userId: 'u1', roles: ['creator'] }, t0)
  const first = await verifyAccessToken(config, token, t0.getTime())
  expect(first).toEqual({ ok: true, principal: { userId: 'u1', roles: ['creator'] } })
  // Seen: the same principal again, shared and frozen so that no request can change it for another.
  const again = await verifyAccessToken(config, token, t0.getTime() + 30_000)
  expect(again.ok && first.ok && again.principal).toBe(first.ok && first.principal)
  expect(again.ok && Object.isFrozen(again.principal) && Object.isFrozen(again.principal.roles)).toBe(true)
  // Within the 5 s tolerance after exp (t0 + 60 s) it holds; from then on it is refused, cached or not.
  expect((await verifyAccessToken(config, token, t0.getTime() + 64_999)).ok).toBe(true)
  expect(await verifyAccessToken(config, token, t0.getTime() + 65_000)).toEqual({ ok: false, reason: 'access token expired; refresh it' })
  expect(await verifyAccessToken(config, token, t0.getTime() + 30_000)).toEqual(first) // verified anew when the clock says so
})

it('keeps nothing of a token that fails, and verifies per configuration', async () => {
  const now = Date.parse('2026-12-03T12:00:00Z')
  const { token } = await signAccessToken(config, { userId: 'u2', roles: ['viewer'] }, new Date(now))
  const tampered = `${token.slice(0, -2)}${token.endsWith('A') ? 'B' : 'A'}A`
  expect(await verifyAccessToken(config, tampered, now)).toEqual({ ok: false, reason: 'access token is not valid' })
  expect(await verifyAccessToken(config, tampered, now)).toEqual({ ok: false, reason: 'access token is not valid' })
  // Verified under one configuration, the token is not thereby good under another secret or issuer.
  expect((await verifyAccessToken(config, token, now)).ok).toBe(true)
  expect((await verifyAccessToken({ ...config, key: new TextEncoder().encode('y'.repeat(48)) }, token, now)).ok).toBe(false)
  expect((await verifyAccessToken({ ...config, issuer: 'other' }, token, now)).ok).toBe(false)
})
