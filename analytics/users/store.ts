import { createHash } from 'node:crypto'
import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import { apiInstant } from '../../lib/instants.ts'

export const roles = ['viewer', 'creator', 'admin', 'analyst'] as const
export type Role = (typeof roles)[number]

export const userRow = z.object({
  user_id: z.string(),
  provider: z.string(),
  subject: z.string(),
  email: z.string(),
  email_verified: z.coerce.number().transform((n) => n === 1),
  name: z.string(),
  roles: z.array(z.enum(roles)).catch([]),
  created_at: z.string(),
  updated_at: z.string(),
})
export type UserRow = z.infer<typeof userRow>

export type Identity = { provider: string; subject: string; email?: string; emailVerified: boolean; name?: string }

/** The stable id of the account `subject` at `provider`. */
export function userIdFor(provider: string, subject: string): string {
  return `u_${createHash('sha256').update(`${provider}\0${subject}`).digest('hex').slice(0, 20)}`
}

/** ClickHouse DateTime64 text for a time (UTC). */
export function chTime(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '')
}

/** A version strictly after `prev` (a row's `updated_at` as stored), so a rewrite in the same millisecond still wins. */
export function versionAfter(prev?: string): Date {
  const prevMs = prev ? Date.parse(apiInstant(prev)) : 0
  return new Date(Math.max(Date.now(), prevMs + 1))
}

export async function getUser(ch: ClickHouseClient, userId: string): Promise<UserRow | undefined> {
  const rs = await ch.query({
    query: `SELECT user_id, provider, subject, email, email_verified, name, roles, toString(created_at) AS created_at, toString(updated_at) AS updated_at
            FROM users FINAL WHERE user_id = {id:String} LIMIT 1`,
    query_params: { id: userId },
    format: 'JSONEachRow',
  })
  const [row] = await rs.json()
  return row === undefined ? undefined : userRow.parse(row)
}

async function write(ch: ClickHouseClient, row: Omit<UserRow, 'updated_at'>, version: Date): Promise<UserRow> {
  const full = { ...row, updated_at: chTime(version) }
  await ch.insert({ table: 'users', values: [{ ...full, email_verified: row.email_verified ? 1 : 0 }], format: 'JSONEachRow' })
  return full
}

/** Creates the user on first login, or refreshes email and name; granted roles are kept. */
export async function upsertUser(ch: ClickHouseClient, identity: Identity): Promise<UserRow> {
  const userId = userIdFor(identity.provider, identity.subject)
  const prior = await getUser(ch, userId)
  const version = versionAfter(prior?.updated_at)
  return write(
    ch,
    {
      user_id: userId,
      provider: identity.provider,
      subject: identity.subject,
      email: identity.email?.toLowerCase() ?? '',
      email_verified: identity.emailVerified,
      name: identity.name ?? prior?.name ?? '',
      roles: prior?.roles ?? [],
      created_at: prior?.created_at ?? chTime(version),
    },
    version,
  )
}

/** Adds a granted role to a user (no-op when already held). */
export async function grantRole(ch: ClickHouseClient, user: UserRow, role: Role): Promise<UserRow> {
  if (user.roles.includes(role)) return user
  const { updated_at, ...rest } = user
  return write(ch, { ...rest, roles: [...user.roles, role] }, versionAfter(updated_at))
}

/** The roles a user acts with: viewer, the granted ones, and admin / analyst from the settings' email lists. */
export function effectiveRoles(user: UserRow, lists: { ADMIN_EMAILS: string[]; ANALYST_EMAILS: string[] }): Role[] {
  const out = new Set<Role>(['viewer', ...user.roles])
  if (user.email && user.email_verified) {
    if (lists.ADMIN_EMAILS.includes(user.email)) out.add('admin')
    if (lists.ANALYST_EMAILS.includes(user.email)) out.add('analyst')
  }
  return roles.filter((r) => out.has(r))
}

/** The public view of a user. */
export function publicUser(user: UserRow, effective: Role[]) {
  return { id: user.user_id, provider: user.provider, email: user.email || null, name: user.name || null, roles: effective, created_at: apiInstant(user.created_at) }
}
