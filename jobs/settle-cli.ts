import { parseArgs } from 'node:util'
import { loadSettingsOrExit } from '../lib/config.ts'
import { createServices } from '../lib/create-services.ts'
import type { SettleStreamEvent } from './http.ts'
import { SettlementError } from './settlement/errors.ts'
import { describeOutcome } from './settlement/format.ts'
import { runningServer, ServerRefused, ServerUnreachable, settleOnServer } from './settlement/handoff.ts'
import { settle } from './settlement/job.ts'
import { settleRequestFrom, type SettleArgs } from './settlement/request.ts'

const usage = `usage: npm run settle -- --date YYYY-MM-DD | --from YYYY-MM-DD --to YYYY-MM-DD | --finalize [--dry-run] [--json]

  --date D            settle day D (in SETTLEMENT_TZ) as provisional; it must have ended and be inside the lateness window
  --from A --to B     settle the days A to B, in order
  --finalize          with a day or range: settle those days as final (they must be past the lateness window);
                      alone: finalize every day past the lateness window that is not final yet
  --dry-run           price the days and print the summary without writing anything
  --json              print one JSON object per day instead of a sentence

Later provisional days that depend on a day that changed are recomputed after it, in order.
With the embedded engine, a running server owns the data folder: the run is handed to it.`

let values: { date?: string; from?: string; to?: string; finalize?: boolean; 'dry-run'?: boolean; json?: boolean; help?: boolean }
try {
  ;({ values } = parseArgs({
    options: {
      date: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      finalize: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }))
} catch (err) {
  console.error(`${err instanceof Error ? err.message : err}\n\n${usage}`)
  process.exit(2)
}
if (values.help) {
  console.log(usage)
  process.exit(0)
}
const args: SettleArgs = { date: values.date, from: values.from, to: values.to, finalize: values.finalize, dryRun: values['dry-run'] }
try {
  settleRequestFrom(args, 'cli')
} catch (err) {
  console.error(`${err instanceof Error ? err.message : err}\n\n${usage}`)
  process.exit(2)
}

const print = (e: SettleStreamEvent) => {
  if (e.type === 'day') console.log(values.json ? JSON.stringify(e.day) : describeOutcome(e.day))
  else if (e.type === 'done') {
    if (e.days === 0 && !values.json) console.log('nothing to settle')
    if (e.remaining > 0) console.log(`${e.remaining} more days are due; run again to continue`)
  }
}

const settings = loadSettingsOrExit()
process.exitCode = await main()

async function main(): Promise<number> {
  const server = settings.embedded ? runningServer(settings.dataDir) : null
  if (server) {
    try {
      let failed: string | undefined
      await settleOnServer(server, settings.HOST, args, (e) => {
        if (e.type === 'error') failed = `${e.code}: ${e.detail}`
        else print(e)
      })
      if (failed === undefined) return 0
      console.error(`settlement failed: ${failed}`)
      return 1
    } catch (err) {
      if (err instanceof ServerRefused) {
        console.error(err.message)
        return 1
      }
      if (!(err instanceof ServerUnreachable)) throw err
      console.error(`${err.message}; running here instead`)
    }
  }
  const services = await createServices(settings)
  try {
    const result = await settle(services, settleRequestFrom(args, 'cli'), { onDay: (d) => print({ type: 'day', day: d }) })
    print({ type: 'done', days: result.days.length, remaining: result.remaining })
    return 0
  } catch (err) {
    if (err instanceof SettlementError) {
      console.error(err.message)
      return 1
    }
    console.error(`settlement failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`)
    return 1
  } finally {
    await services.close()
  }
}
