/** bench:ingest's reading of the server's Prometheus metrics at the end of a run. */

export type ServerMetrics = {
  flushes: number
  /** Rows of all loads. */
  rows: number
  mean_rows: number
  mean_seconds: number
  /** Group-commit flushes into the write-ahead log (write, fsync, Redis marks). */
  wal_flushes: number
  wal_mean_rows: number
  wal_mean_seconds: number
  /** Upper bound of the histogram bucket holding the 99th percentile of flush durations. */
  wal_p99_seconds_at_most: number
  /**
   * Mean seconds a request spent deciding (validation, Redis rules) and waiting for its flush; and a
   * batch that waited for a place among INGEST_MAX_IN_PROGRESS, waiting (let in or not; NaN if none did).
   */
  stage_mean_seconds: { decide: number; commit: number; place: number }
  /** Batches that waited for a place among INGEST_MAX_IN_PROGRESS (let in or not). */
  place_waits: number
  /**
   * Upper bounds (ms) of the histogram buckets holding the 99th percentile of the server's own
   * time for `POST /v1/events` (from its first middleware to its answer) and of its two stages,
   * after the warm-up (when the metrics read then are given): where the players' p99 is spent
   * inside the server, and how much is not.
   */
  server_p99_ms_at_most: { request: number; decide: number; commit: number }
  js_heap_mib: number
  /** What the embedded engine tracks as allocated (MemoryTracking) at the end of the run. */
  engine_tracked_mib: number
  /** What the embedded engine's allocator (jemalloc) holds resident at the end of the run. */
  engine_resident_mib: number
  server_side_latency: Record<string, number>
}

/** The edge's loads into ClickHouse, its log flushes and request stages, from its Prometheus metrics. */
export async function flushMetrics(url: string, atWarmup?: string): Promise<ServerMetrics> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const v = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN)
  const mean = (name: string) => v(`${name}_sum`) / v(`${name}_count`)
  return {
    flushes: v('cs_ingest_flush_rows_count'),
    rows: v('cs_ingest_flush_rows_sum'),
    mean_rows: mean('cs_ingest_flush_rows'),
    mean_seconds: mean('cs_ingest_flush_duration_seconds'),
    wal_flushes: v('cs_ingest_wal_flush_rows_count'),
    wal_mean_rows: mean('cs_ingest_wal_flush_rows'),
    wal_mean_seconds: mean('cs_ingest_wal_flush_duration_seconds'),
    wal_p99_seconds_at_most: bucketQuantile(text, 'cs_ingest_wal_flush_duration_seconds', 0.99),
    stage_mean_seconds: {
      decide: v('cs_ingest_stage_duration_seconds_sum{stage="decide"}') / v('cs_ingest_stage_duration_seconds_count{stage="decide"}'),
      commit: v('cs_ingest_stage_duration_seconds_sum{stage="commit"}') / v('cs_ingest_stage_duration_seconds_count{stage="commit"}'),
      place: v('cs_ingest_stage_duration_seconds_sum{stage="place"}') / v('cs_ingest_stage_duration_seconds_count{stage="place"}'),
    },
    place_waits: v('cs_ingest_stage_duration_seconds_count{stage="place"}') || 0,
    server_p99_ms_at_most: {
      request: bucketQuantile(text, 'cs_http_request_duration_seconds', 0.99, EVENTS_POST, atWarmup) * 1000,
      decide: bucketQuantile(text, 'cs_ingest_stage_duration_seconds', 0.99, ['stage="decide"'], atWarmup) * 1000,
      commit: bucketQuantile(text, 'cs_ingest_stage_duration_seconds', 0.99, ['stage="commit"'], atWarmup) * 1000,
    },
    // At the end of the run: the JavaScript heap, the engine's tracked memory and its allocator's resident.
    js_heap_mib: Math.round(v('cs_nodejs_heap_size_total_bytes') / 1048576),
    engine_tracked_mib: Math.round(v('cs_clickhouse_embedded_memory_tracked_bytes') / 1048576),
    engine_resident_mib: Math.round(v('cs_clickhouse_embedded_memory_resident_bytes') / 1048576),
    server_side_latency: serverLatency(text),
  }
}

/** The series of `POST /v1/events` in the request-duration histogram. */
const EVENTS_POST = ['route="/v1/events"', 'method="POST"']

/**
 * A histogram's buckets as [upper bound, cumulative count], in order (the last one +Inf, read as
 * NaN), of its series with all of `labels` (e.g. 'stage="decide"'; none: a histogram without labels).
 */
function histogramBuckets(text: string, name: string, labels: string[] = []): (readonly [number, number])[] {
  return [...text.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} ([0-9.e+-]+)$`, 'gm'))]
    .filter((m) => labels.every((l) => m[1]!.split(',').includes(l)))
    .map((m) => [Number(/le="([^"]+)"/.exec(m[1]!)?.[1]), Number(m[2])] as const)
}

/**
 * The upper bound of the first bucket of a histogram's series (see histogramBuckets) that holds
 * quantile q; with `since` (the metrics read earlier), of what was observed after it.
 */
function bucketQuantile(text: string, name: string, q: number, labels: string[] = [], since?: string): number {
  const before = new Map(since === undefined ? [] : histogramBuckets(since, name, labels))
  const buckets = histogramBuckets(text, name, labels).map(([le, n]) => [le, n - (before.get(le) ?? 0)] as const)
  const total = buckets.at(-1)?.[1] ?? 0
  return buckets.find(([, n]) => n >= q * total)?.[0] ?? NaN
}

/**
 * Share of `POST /v1/events` answered (as the server timed it, from parse to response)
 * within each histogram bucket: tells the server's own latency from the generator's.
 */
function serverLatency(text: string): Record<string, number> {
  const buckets = histogramBuckets(text, 'cs_http_request_duration_seconds', EVENTS_POST)
  const total = buckets.at(-1)?.[1] ?? 0
  return Object.fromEntries(buckets.slice(0, -1).map(([le, n]) => [`<=${le * 1000}ms`, total ? +(n / total).toFixed(4) : 0]))
}
