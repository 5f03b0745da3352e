/**
 * bench:ingest's view of each second of a run from the server's side, for finding where
 * the players' time goes when the accepted events dip (`--stages-by-second`): the
 * server's Prometheus metrics read once a second, and the differences between two
 * readings put in the second the first was read in.
 */
import { percentile } from './lib.ts'

/** The 99th percentile of the latencies (ms) of the requests sent in each second (`sentAt`, seconds from the start). */
export function p99BySecond(latencies: number[], sentAt: number[]): number[] {
  const by: number[][] = []
  latencies.forEach((ms, i) => (by[Math.floor(sentAt[i]!)] ??= []).push(ms))
  return Array.from(by, (xs) => (xs ? +percentile(Float64Array.from(xs).sort(), 99).toFixed(1) : 0))
}

/** Cumulative figures of one reading of /metrics. */
type Reading = { at: number; values: Map<string, number> }

/** The series kept, each from the sum and count of a histogram of the server (several label sets summed). */
const SERIES = {
  /** POST /v1/events answered (any status) and their mean time in the server, handler start to response (ms). */
  requests: { histogram: 'cs_http_request_duration_seconds', labels: 'method="POST",route="/v1/events"' },
  /** Batches that waited for a place among INGEST_MAX_IN_PROGRESS (let in or not) and their mean wait. */
  place: { histogram: 'cs_ingest_stage_duration_seconds', labels: 'stage="place"' },
  decide: { histogram: 'cs_ingest_stage_duration_seconds', labels: 'stage="decide"' },
  commit: { histogram: 'cs_ingest_stage_duration_seconds', labels: 'stage="commit"' },
  /** Group-commit flushes into the write-ahead log (write, fsync, Redis marks). */
  log_flushes: { histogram: 'cs_ingest_wal_flush_duration_seconds', labels: '' },
  /** Loads into ClickHouse. */
  loads: { histogram: 'cs_ingest_flush_duration_seconds', labels: '' },
  /** Ticks of the server's 50 ms event-loop timer; their sum is about the time its JavaScript thread was held. */
  loop_ticks: { histogram: 'cs_event_loop_delay_seconds', labels: '' },
} as const

export type StagesBySecond = Record<`${keyof typeof SERIES}_count` | `${keyof typeof SERIES}_mean_ms`, number[]> & {
  /** Sum of how late the server's event-loop timer fired in each second (ms): its JavaScript thread held about that long. */
  loop_held_ms: number[]
}

/** Sum and count of every series in one /metrics text (histograms with several label sets summed, e.g. by status). */
function parse(text: string): Map<string, number> {
  const values = new Map<string, number>()
  for (const [name, s] of Object.entries(SERIES)) {
    for (const part of ['sum', 'count'] as const) {
      let total = 0
      const re = new RegExp(`^${s.histogram}_${part}(?:\\{([^}]*)\\})? ([0-9.e+-]+)$`, 'gm')
      const wanted = s.labels.split(',').filter(Boolean)
      for (const m of text.matchAll(re)) {
        const labels = (m[1] ?? '').split(',')
        if (wanted.every((l) => labels.includes(l))) total += Number(m[2])
      }
      values.set(`${name}_${part}`, total)
    }
  }
  return values
}

/**
 * Reads `${url}/metrics` when `sample()` is called at least a second after the last
 * reading (one reading at a time); `series()` gives each second's figures, gaps as 0.
 */
export function stagesBySecond(url: string, from: number) {
  const bySecond: Record<string, number[]> = {}
  let last: Reading | undefined
  let reading = false
  const put = (name: string, second: number, value: number) => ((bySecond[name] ??= [])[second] = value)
  return {
    sample(): void {
      if (reading || (last && performance.now() - last.at < 1000)) return
      reading = true
      const at = performance.now()
      fetch(`${url}/metrics`)
        .then((r) => r.text())
        .then((text) => {
          const now: Reading = { at, values: parse(text) }
          if (last) {
            const second = Math.floor((last.at - from) / 1000)
            const d = (k: string) => (now.values.get(k) ?? 0) - (last!.values.get(k) ?? 0)
            for (const name of Object.keys(SERIES)) {
              const count = d(`${name}_count`)
              put(`${name}_count`, second, count)
              put(`${name}_mean_ms`, second, count > 0 ? +((d(`${name}_sum`) / count) * 1000).toFixed(1) : 0)
            }
            put('loop_held_ms', second, Math.round(d('loop_ticks_sum') * 1000))
          }
          last = now
        })
        .catch(() => {})
        .finally(() => (reading = false))
    },
    series(): StagesBySecond {
      return Object.fromEntries(Object.entries(bySecond).map(([k, s]) => [k, Array.from(s, (v) => v ?? 0)])) as StagesBySecond
    },
  }
}
