import { z } from 'zod'
import type { ClickHouseClient } from '../../lib/clickhouse.ts'
import type { Day } from './calendar.ts'
import { SettlementError } from './errors.ts'

export type PricingMode = 'graduated' | 'volume'

/** A rate card version. Rates are integer tenths of a won per unit. */
export type RateCard = {
  version: number
  effectiveFrom: Day
  mode: PricingMode
  /** Tier i covers lifetime counts n with floors[i] < n <= floors[i+1]; floors[0] is 0, the last tier is open. */
  tierFloors: bigint[]
  videoRatesTenths: bigint[]
  adRatesTenths: bigint[]
  note: string
}

const u64 = z.union([z.string(), z.number()]).transform((v) => BigInt(v))
const rowSchema = z.object({
  version: z.coerce.number(),
  effective_from: z.string(),
  mode: z.enum(['graduated', 'volume']),
  tier_floors: z.array(u64),
  video_rates_tenths: z.array(u64),
  ad_rates_tenths: z.array(u64),
  note: z.string(),
})

function fromRow(r: z.infer<typeof rowSchema>): RateCard {
  return {
    version: r.version,
    effectiveFrom: r.effective_from,
    mode: r.mode,
    tierFloors: r.tier_floors,
    videoRatesTenths: r.video_rates_tenths,
    adRatesTenths: r.ad_rates_tenths,
    note: r.note,
  }
}

const COLUMNS = 'version, effective_from, mode, tier_floors, video_rates_tenths, ad_rates_tenths, note'

/** Every rate card, oldest version first. */
export async function listRateCards(ch: ClickHouseClient): Promise<RateCard[]> {
  const rs = await ch.query({ query: `SELECT ${COLUMNS} FROM rate_cards ORDER BY version`, format: 'JSONEachRow' })
  return (await rs.json()).map((r) => fromRow(rowSchema.parse(r)))
}

/**
 * The card that prices `day`: the latest effective_from on or before it, the highest version on a tie.
 *
 * @throws SettlementError NO_RATE_CARD
 */
export async function rateCardFor(ch: ClickHouseClient, day: Day): Promise<RateCard> {
  const rs = await ch.query({
    query: `SELECT ${COLUMNS} FROM rate_cards WHERE effective_from <= {day:Date} ORDER BY effective_from DESC, version DESC LIMIT 1`,
    query_params: { day },
    format: 'JSONEachRow',
  })
  const [row] = await rs.json()
  if (row === undefined) throw new SettlementError('NO_RATE_CARD', `no rate card is effective on ${day}; add one with an effective date on or before it`)
  return fromRow(rowSchema.parse(row))
}

export type NewRateCard = Omit<RateCard, 'version' | 'note'> & { note?: string }

/** Checks a card's tiers and rates; returns the problem, or null. */
export function rateCardProblem(card: Pick<RateCard, 'mode' | 'tierFloors' | 'videoRatesTenths' | 'adRatesTenths'>): string | null {
  const { tierFloors: f, videoRatesTenths: v, adRatesTenths: a } = card
  if (card.mode !== 'graduated' && card.mode !== 'volume') return 'mode must be graduated or volume'
  if (f.length === 0 || f[0] !== 0n) return 'the first tier must start at 0 (tier_floors[0] = 0)'
  if (f.length > 64) return 'at most 64 tiers'
  for (let i = 1; i < f.length; i++) if (f[i]! <= f[i - 1]!) return 'tier floors must be strictly increasing'
  if (v.length !== f.length || a.length !== f.length) return 'one video rate and one ad rate per tier'
  // Keeps rate * units far below 2^63 for any realistic day (10^12 units at 10^6 tenths).
  if ([...v, ...a].some((r) => r < 0n || r > 1_000_000n)) return 'rates are tenths of a won between 0 and 1,000,000'
  return null
}

/**
 * Stores a new rate card version. Final days never change, so a card may only take
 * effect after the last final day; provisional days pick it up when they are rerun.
 *
 * @throws SettlementError BAD_RATE_CARD
 */
export async function addRateCard(ch: ClickHouseClient, card: NewRateCard, lastFinalDay: Day | null): Promise<RateCard> {
  const problem = rateCardProblem(card)
  if (problem) throw new SettlementError('BAD_RATE_CARD', problem)
  if (lastFinalDay !== null && card.effectiveFrom <= lastFinalDay)
    throw new SettlementError('BAD_RATE_CARD', `a rate card must take effect after the last final day ${lastFinalDay}: final days never change`)
  const rs = await ch.query({ query: 'SELECT toUInt32(max(version)) AS v FROM rate_cards', format: 'JSONEachRow' })
  const [max] = z.array(z.object({ v: z.coerce.number() })).parse(await rs.json())
  const version = (max?.v ?? 0) + 1
  await ch.insert({
    table: 'rate_cards',
    format: 'JSONEachRow',
    values: [
      {
        version,
        effective_from: card.effectiveFrom,
        mode: card.mode,
        tier_floors: card.tierFloors.map(String),
        video_rates_tenths: card.videoRatesTenths.map(String),
        ad_rates_tenths: card.adRatesTenths.map(String),
        note: card.note ?? '',
        created_at: new Date().toISOString(),
      },
    ],
  })
  return { ...card, version, note: card.note ?? '' }
}

/**
 * Exact price in tenths of a won of the units that take a lifetime count from `before`
 * to `before + units`, under `mode`. The same rule the settlement SQL applies; kept here
 * to explain a line and to check the SQL against.
 */
export function priceUnits(floors: readonly bigint[], ratesTenths: readonly bigint[], mode: PricingMode, before: bigint, units: bigint): bigint {
  if (units === 0n) return 0n
  const after = before + units
  if (mode === 'volume') {
    let tier = 0
    for (let i = 0; i < floors.length; i++) if (floors[i]! < after) tier = i
    return units * ratesTenths[tier]!
  }
  let total = 0n
  for (let i = 0; i < floors.length; i++) {
    const lo = floors[i]!
    const hi = floors[i + 1]
    const clamp = (n: bigint) => (n < lo ? lo : hi !== undefined && n > hi ? hi : n)
    total += (clamp(after) - clamp(before)) * ratesTenths[i]!
  }
  return total
}
