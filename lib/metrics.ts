import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Seconds, for a request and its stages: finer around 100 ms, the ingest target's p99 (see README, Performance). */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1, 2.5, 5]

/**
 * One Prometheus registry per process, served at `/metrics`. Each component adds
 * its own metrics here, named `cs_<component>_<what>`.
 */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'cs_' })
  // Not the heap's spaces: under Bun, v8.getHeapSpaceStatistics() walks every object of the heap
  // (bun:jsc's heapStats), ~190 ms for 6 million objects, and holds the JavaScript thread while
  // it does, at every scrape; JavaScriptCore has one space, whose size cs_nodejs_heap_size_* give.
  for (const kind of ['total', 'used', 'available']) registry.removeSingleMetric(`cs_nodejs_heap_space_size_${kind}_bytes`)
  const httpRequests = new Counter({ name: 'cs_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'] as const, registers: [registry] })
  const httpDuration = new Histogram({
    name: 'cs_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['method', 'route'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [registry],
  })
  const eventsTotal = new Counter({ name: 'cs_ingest_events_total', help: 'Playback events by outcome (accepted, duplicate, rejected) and reason', labelNames: ['outcome', 'reason'] as const, registers: [registry] })
  const flushRows = new Histogram({ name: 'cs_ingest_flush_rows', help: 'Rows per ClickHouse insert', buckets: [1, 10, 100, 500, 1000, 5000, 10000, 50000], registers: [registry] })
  const flushDuration = new Histogram({ name: 'cs_ingest_flush_duration_seconds', help: 'Duration of ClickHouse inserts', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5], registers: [registry] })
  const walFlushRows = new Histogram({ name: 'cs_ingest_wal_flush_rows', help: 'Rows per group-commit flush into the write-ahead log', buckets: [1, 10, 100, 500, 1000, 5000, 10000, 50000], registers: [registry] })
  const walFlushDuration = new Histogram({ name: 'cs_ingest_wal_flush_duration_seconds', help: 'Duration of group-commit flushes into the write-ahead log (write, fsync, Redis marks)', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5], registers: [registry] })
  const ingestStage = new Histogram({
    name: 'cs_ingest_stage_duration_seconds',
    help: 'Time a POST /v1/events spends in each stage: place (waiting for a place among INGEST_MAX_IN_PROGRESS, BUFFER_WAIT_MS at most; only batches that waited, let in or not), room (waiting for room in a full buffer, BUFFER_WAIT_MS at most; only batches that waited), decide (validation and the Redis rules), commit (waiting for its flush into the write-ahead log)',
    labelNames: ['stage'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [registry],
  })
  const flushFailures = new Counter({ name: 'cs_ingest_flush_failures_total', help: 'Failed ClickHouse inserts (after retries)', registers: [registry] })
  const rowsSetAside = new Counter({
    name: 'cs_ingest_rows_set_aside_total',
    help: 'Acknowledged rows ClickHouse could not read, kept in the write-ahead log folder (set-aside/) instead of loaded; anything above 0 needs an operator',
    registers: [registry],
  })
  const batchesInProgress = new Gauge({
    name: 'cs_ingest_batches_in_progress',
    help: 'Event batches the edge is taking in (body read, deciding or waiting for their flush); at most INGEST_MAX_IN_PROGRESS',
    registers: [registry],
  })
  const batchesRefused = new Counter({
    name: 'cs_ingest_batches_refused_total',
    help: 'Event batches answered 503 without being taken in: at once when INGEST_MAX_WAITING already wait for a place among the INGEST_MAX_IN_PROGRESS, else after waiting BUFFER_WAIT_MS in vain',
    registers: [registry],
  })
  const jobRuns = new Counter({ name: 'cs_job_runs_total', help: 'Job runs by job and status', labelNames: ['job', 'status'] as const, registers: [registry] })
  return { registry, httpRequests, httpDuration, eventsTotal, flushRows, flushDuration, walFlushRows, walFlushDuration, ingestStage, flushFailures, rowsSetAside, batchesInProgress, batchesRefused, jobRuns }
}

export type Metrics = ReturnType<typeof createMetrics>

/**
 * The embedded engine's statements by kind (load: background statements, the edge's events and the settlement's lines; read: the rest), from
 * their turn to their answer: chDB runs one at a time, so a long one shows in those after it too.
 */
export function embeddedStatementHistogram(metrics: Metrics) {
  return new Histogram({
    name: 'cs_clickhouse_embedded_statement_duration_seconds',
    help: "Statements of the embedded engine by kind (load: background statements, the edge's loads of events and the settlement's line statements; read: the rest), from their turn to their answer",
    labelNames: ['kind'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [metrics.registry],
  })
}

/**
 * How late a timer due every `everyMs` fires, as a histogram: while the JavaScript thread is
 * busy or stopped (a long task, a garbage collection), requests wait that long before their
 * handlers start, which the request latency histogram does not see. The sum grows by about
 * the time the thread was held. (prom-client's own event-loop lag metrics read Node's
 * monitorEventLoopDelay, which under Bun does not see a blocked loop.) Returns a stop function.
 */
export function watchEventLoop(metrics: Metrics, everyMs = 50): () => void {
  const delay = new Histogram({
    name: 'cs_event_loop_delay_seconds',
    help: `How late a timer due every ${everyMs} ms fired: the JavaScript thread busy or stopped that long`,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metrics.registry],
  })
  let due = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const arm = () => {
    due = performance.now() + everyMs
    timer = setTimeout(tick, everyMs)
    timer.unref?.()
  }
  const tick = () => {
    delay.observe(Math.max(0, performance.now() - due) / 1000)
    arm()
  }
  arm()
  return () => clearTimeout(timer)
}

/**
 * What the embedded engine (chDB, in this process) has allocated and tracks, and what its
 * allocator (jemalloc) holds resident (the tracked memory, its free pages not yet given back
 * and its own bookkeeping), read at each scrape. The rest of the process's RSS beyond these and
 * the JavaScript heap is code mapped from disk and Bun's allocator. In server mode ClickHouse
 * reports its own.
 */
export function trackEmbeddedEngineMemory(metrics: Metrics, read: { tracked: () => Promise<number>; resident: () => Promise<number> }): void {
  gaugeRead(metrics, 'cs_clickhouse_embedded_memory_tracked_bytes', 'Memory the embedded ClickHouse engine tracks (system.metrics MemoryTracking)', read.tracked)
  gaugeRead(metrics, 'cs_clickhouse_embedded_memory_resident_bytes', "Memory the embedded engine's allocator holds resident (jemalloc's resident, system.jemalloc_stats)", read.resident)
}

/**
 * The edge's buffer, read at each scrape: the rows not yet in ClickHouse (reserved by batches
 * being decided, waiting for their flush, logged or loading) and the bytes of their text. At
 * BUFFER_MAX_ROWS or BUFFER_MAX_BYTES batches wait for room, then get 503.
 */
export function watchIngestBuffer(metrics: Metrics, read: { rows(): number; bytes(): number }): void {
  gaugeRead(metrics, 'cs_ingest_buffer_rows', 'Rows the edge holds that are not yet in ClickHouse; at BUFFER_MAX_ROWS batches wait for room, then get 503', read.rows)
  gaugeRead(metrics, 'cs_ingest_buffer_bytes', "Bytes of those rows' text (a byte a character); at BUFFER_MAX_BYTES batches wait for room, then get 503", read.bytes)
}

/** A gauge whose value is read at each scrape; a failed read (the engine busy closing, say) keeps the last value rather than failing the scrape. */
export function gaugeRead(metrics: Metrics, name: string, help: string, read: () => number | Promise<number>): void {
  let last = 0
  new Gauge({
    name,
    help,
    registers: [metrics.registry],
    async collect() {
      last = await Promise.resolve()
        .then(read)
        .catch(() => last)
      this.set(last)
    },
  })
}
