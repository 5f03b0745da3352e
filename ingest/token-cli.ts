import { parseArgs } from 'node:util'
import { loadSettingsOrExit } from '../lib/config.ts'
import { loadPlaybackKeys } from './tokens/keys.ts'
import { signPlaybackToken } from './tokens/playback.ts'

const usage = 'usage: npm run token -- --video V --creator C --viewer W [--session S] [--duration-ms D] [--ads a1,a2] [--ttl SECONDS]'
let values: Record<string, string | undefined>
try {
  ;({ values } = parseArgs({
    options: {
      video: { type: 'string' }, creator: { type: 'string' }, viewer: { type: 'string' }, session: { type: 'string' },
      'duration-ms': { type: 'string' }, ads: { type: 'string' }, ttl: { type: 'string' },
    },
    strict: true,
  }) as { values: Record<string, string | undefined> })
} catch (err) {
  console.error(`${err instanceof Error ? err.message : err}\n${usage}`)
  process.exit(2)
}
const { video, creator, viewer } = values
if (!video || !creator || !viewer) {
  console.error(usage)
  process.exit(2)
}
const durationMs = Number(values['duration-ms'] ?? 600_000)
if (!Number.isInteger(durationMs) || durationMs < 0) {
  console.error(`--duration-ms must be a whole number of milliseconds\n${usage}`)
  process.exit(2)
}
const settings = loadSettingsOrExit()
const ttl = values.ttl === undefined ? settings.PLAYBACK_TOKEN_TTL_SECONDS : Number(values.ttl)
if (!Number.isInteger(ttl) || ttl <= 0) {
  console.error(`--ttl must be a positive whole number of seconds\n${usage}`)
  process.exit(2)
}
const keys = await loadPlaybackKeys(settings)
const { token } = await signPlaybackToken(keys, { issuer: settings.PLAYBACK_TOKEN_ISSUER, ttlSeconds: ttl }, {
  videoId: video,
  creatorId: creator,
  viewerId: viewer,
  sessionId: values.session ?? crypto.randomUUID(),
  adIds: values.ads ? values.ads.split(',').map((a) => a.trim()).filter(Boolean) : [],
  durationMs,
})
console.log(token)
