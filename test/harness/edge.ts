import { createEdge, type Edge } from '../../ingest/app.ts'
import { signPlaybackToken, type PlaybackGrant } from '../../ingest/tokens/playback.ts'
import { createRootApp } from '../../lib/http.ts'
import { startTestServices, type TestServices } from './services.ts'

export type TestEdge = {
  s: TestServices
  edge: Edge
  app: ReturnType<typeof createRootApp>
  token(grant?: Partial<PlaybackGrant>, opts?: { ttlSeconds?: number; now?: Date }): Promise<string>
  /**
   * Sends a batch; once it is answered, waits until the edge's loader has put everything
   * logged into ClickHouse (as it does within LOAD_INTERVAL_MS in production), so tests
   * can assert on tables at once. `{ load: false }` answers as soon as the edge does.
   */
  post(token: string, events: unknown[], opts?: { ip?: string; headers?: Record<string, string>; load?: boolean }): Promise<Response>
  stop(): Promise<void>
}

/** The edge on real engines, driven in-process through `app.request`. */
export async function startTestEdge(overrides: Record<string, string> = {}): Promise<TestEdge> {
  const s = await startTestServices({ FLUSH_INTERVAL_MS: '2', ...overrides })
  const edge = createEdge(s)
  await edge.recover()
  const app = createRootApp(s, { apps: [edge.app], ready: () => edge.accepting })
  return {
    s,
    edge,
    app,
    async token(grant = {}, opts = {}) {
      const { token } = await signPlaybackToken(
        s.playbackKeys,
        { issuer: s.settings.PLAYBACK_TOKEN_ISSUER, ttlSeconds: opts.ttlSeconds ?? 3600, now: opts.now },
        { viewerId: 'viewer-1', videoId: 'video-1', creatorId: 'creator-1', sessionId: crypto.randomUUID(), adIds: [], durationMs: 600_000, ...grant },
      )
      return token
    },
    async post(token, events, opts = {}) {
      const res = await app.request(
        '/v1/events',
        { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...opts.headers }, body: JSON.stringify({ events }) },
        { ip: opts.ip ?? '10.0.0.1' },
      )
      if (opts.load !== false) await edge.loader.drain()
      return res
    },
    async stop() {
      await edge.flush(10_000)
      await s.stopAll()
    },
  }
}

/** A playback event with a fresh id. */
export function ev(type: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: crypto.randomUUID(), type, ts: Date.now(), position_ms: 0, ...fields }
}
