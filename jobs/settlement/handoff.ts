import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import type { SettleStreamEvent } from '../http.ts'
import type { SettleArgs } from './request.ts'

/** What the running server writes to DATA_DIR/run/server.json while it serves. */
export type RunningServer = { pid: number; port: number; internalToken: string }

const serverSchema = z.object({ pid: z.number().int().positive(), port: z.number().int().min(1).max(65535), internalToken: z.string().min(1) })

/**
 * The server that owns the embedded engine's data folder, if one is alive: its
 * server.json exists and names a live process. A stale file (the process is gone) counts as none.
 */
export function runningServer(dataDir: string): RunningServer | null {
  let parsed: RunningServer
  try {
    parsed = serverSchema.parse(JSON.parse(readFileSync(join(dataDir, 'run', 'server.json'), 'utf8')))
  } catch {
    return null
  }
  try {
    process.kill(parsed.pid, 0)
  } catch (err) {
    // EPERM: alive but someone else's; ESRCH: gone.
    if (!(err instanceof Error && 'code' in err && err.code === 'EPERM')) return null
  }
  return parsed
}

/** The server could not be reached at all (nothing listens on its port): the caller may run in-process. */
export class ServerUnreachable extends Error {
  override name = 'ServerUnreachable'
}

/** A refusal the server answered with (application/problem+json). */
export class ServerRefused extends Error {
  override name = 'ServerRefused'
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail)
  }
}

const dayOutcome = z.object({
  day: z.string(),
  status: z.enum(['provisional', 'final']),
  run_id: z.number().nullable(),
  dry_run: z.boolean(),
  trigger: z.enum(['cli', 'scheduler', 'http', 'cascade', 'test']),
  rate_card_version: z.number(),
  pricing_mode: z.string(),
  video_lines: z.number(),
  ad_lines: z.number(),
  views: z.number(),
  video_revenue_krw: z.number(),
  ad_impressions: z.number(),
  ad_revenue_krw: z.number(),
  checksum: z.string(),
  total_krw: z.number(),
  unchanged: z.boolean(),
  duration_ms: z.number(),
})

const eventSchema = z.union([
  z.object({ type: z.literal('day'), day: dayOutcome }),
  z.object({ type: z.literal('heartbeat') }),
  z.object({ type: z.literal('done'), days: z.number(), remaining: z.number() }),
  z.object({ type: z.literal('error'), code: z.string(), detail: z.string() }),
])

/**
 * Hands a settlement run to the running server and reports its stream of events.
 * Connection refused (a server that has just stopped) is ServerUnreachable; a problem
 * answer is ServerRefused.
 */
export async function settleOnServer(server: RunningServer, host: string, args: SettleArgs, onEvent: (e: SettleStreamEvent) => void): Promise<void> {
  const address = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  let res: Response
  try {
    res = await fetch(`http://${address}:${server.port}/internal/jobs/settle`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalToken}`, 'content-type': 'application/json' },
      // No client-side timeout: the server sends a heartbeat line every few seconds while it works.
      body: JSON.stringify({ date: args.date, from: args.from, to: args.to, finalize: args.finalize, dry_run: args.dryRun }),
    })
  } catch (err) {
    throw new ServerUnreachable(`the server (pid ${server.pid}) does not answer on port ${server.port}: ${err instanceof Error ? err.message : err}`)
  }
  if (!res.ok) {
    const body: unknown = await res.json().catch(() => ({}))
    const field = (k: string) => (typeof body === 'object' && body !== null && k in body ? String((body as Record<string, unknown>)[k]) : undefined)
    throw new ServerRefused(res.status, field('settlement_code') ?? field('code') ?? 'ERROR', field('detail') ?? `the server answered ${res.status}`)
  }
  if (!res.body) throw new Error('the server answered without a body')
  const decoder = new TextDecoder()
  let buffered = ''
  const reader = res.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    buffered += decoder.decode(value, { stream: true })
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      if (line.trim() !== '') onEvent(eventSchema.parse(JSON.parse(line)))
    }
  }
}
