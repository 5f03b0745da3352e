import { z } from 'zod'

export const MAX_EVENTS_PER_BATCH = 500
export const MAX_BODY_BYTES = 1024 * 1024

/** Client time: epoch milliseconds, or an RFC 3339 date-time with offset. */
const clientTime = z.union([
  z.number().int().min(0).max(8.64e15),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
])
const ms = z.number().int().min(0).max(7 * 24 * 3600 * 1000)
const notHere = (what: string) => z.undefined({ error: `${what} is only allowed on ${what === 'ad_id' ? 'ad_impression' : 'progress'} events` }).optional()

/** An event id: a UUID, either case; kept lowercase, as raw_events (a UUID column) gives it back. */
const eventId = z.uuid().transform((id) => id.toLowerCase())
const common = { id: eventId, ts: clientTime, position_ms: ms, watched_ms: notHere('watched_ms'), ad_id: notHere('ad_id') }

/** One playback event, as the runtime parser checks it (schema.test.ts holds the compiled one to it). */
export const eventRuntimeSchema = z.discriminatedUnion('type', [
  z.object({ ...common, type: z.literal('play') }),
  z.object({ ...common, type: z.literal('pause') }),
  z.object({ ...common, type: z.literal('seek') }),
  z.object({ ...common, type: z.literal('end') }),
  z.object({ ...common, type: z.literal('progress'), watched_ms: ms }),
  z.object({ ...common, type: z.literal('ad_impression'), ad_id: z.string().min(1).max(128) }),
])

/**
 * One playback event. Video, viewer and session come from the token, never from here.
 * Compiled (zod's `compile`): a generated fast path parses the event, and anything it does
 * not take (invalid input) goes to the runtime parser, which words the error. Checking a
 * 30-event batch takes about a quarter of the runtime's time (0.08-0.11 µs an event against
 * 0.34-0.49 in Bun), and zod's parse was ~11 % of the edge's JavaScript thread under
 * bench:ingest (test/bench/HISTORY.md, 5 December, evening).
 */
export const eventSchema = z.compile(eventRuntimeSchema)

export type PlaybackEvent = z.infer<typeof eventSchema>
export type EventType = PlaybackEvent['type']

/** The envelope: checked as a whole (400), while each event is checked on its own (rejected with a reason). */
export const envelopeRuntimeSchema = z.object({
  events: z.array(z.unknown()).min(1, 'events must hold at least one event').max(MAX_EVENTS_PER_BATCH, `at most ${MAX_EVENTS_PER_BATCH} events per request`),
})
/** The envelope with zod's compiled fast path (see eventSchema). */
export const envelopeSchema = z.compile(envelopeRuntimeSchema)

/** The first problem of a failed parse, as `path: message`. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid'
  const path = issue.path.join('.')
  return path ? `${path}: ${issue.message}` : issue.message
}
