import { parseDay } from './calendar.ts'
import { SettlementError } from './errors.ts'
import type { SettleRequest } from './plan.ts'
import type { RunTrigger } from './runs.ts'

/** The options of `npm run settle` and of POST /internal/jobs/settle. */
export type SettleArgs = { date?: string; from?: string; to?: string; finalize?: boolean; dryRun?: boolean }

/**
 * Turns the command's options into a request: one day, a range, or (`--finalize` alone)
 * every day past the lateness window.
 *
 * @throws SettlementError BAD_DATE with what to write instead
 * @example
 * settleRequestFrom({ date: '2024-03-01' }, 'cli') // { kind: 'days', from: '2024-03-01', to: '2024-03-01', ... }
 */
export function settleRequestFrom(args: SettleArgs, trigger: RunTrigger): SettleRequest {
  const { date, from, to } = args
  const common = { finalize: args.finalize === true, dryRun: args.dryRun === true, trigger }
  if (date !== undefined && (from !== undefined || to !== undefined)) throw new SettlementError('BAD_DATE', 'give either --date or --from/--to, not both')
  if (date !== undefined) return { kind: 'days', from: parseDay(date), to: parseDay(date), ...common }
  if ((from === undefined) !== (to === undefined)) throw new SettlementError('BAD_DATE', '--from and --to go together (both days included)')
  if (from !== undefined && to !== undefined) return { kind: 'days', from: parseDay(from), to: parseDay(to), ...common }
  if (args.finalize) return { kind: 'finalize-due', dryRun: args.dryRun === true, trigger }
  throw new SettlementError('BAD_DATE', 'say which days: --date YYYY-MM-DD, --from YYYY-MM-DD --to YYYY-MM-DD, or --finalize for every day past the lateness window')
}
