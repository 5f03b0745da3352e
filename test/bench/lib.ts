/**
 * Small helpers shared by the benchmarks: flags, machine facts, percentiles, a Zipf
 * sampler, process memory and CPU from /proc, the results table and JSON file.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, freemem, loadavg, totalmem } from 'node:os'
import { join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')
export const BUN = resolve(ROOT, 'node_modules/.bin/bun')
export const RESULTS_DIR = join(ROOT, 'test/bench/results')

/** `--name value` / `--name=value` / `--flag` into a map; numbers stay strings until asked for. */
export function parseFlags(argv: string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith('--')) continue
    const eq = a.indexOf('=')
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1))
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) out.set(a.slice(2), argv[++i]!)
    else out.set(a.slice(2), 'true')
  }
  return out
}

export function num(flags: Map<string, string>, name: string, fallback: number): number {
  const v = flags.get(name)
  if (v === undefined) return fallback
  const n = Number(v.replace(/_/g, ''))
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${v}`)
  return n
}

/** The p-th percentile (0..100) of values (sorted here, ascending). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

/** Deterministic PRNG (mulberry32) so runs with the same seed send the same traffic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Samples ranks 0..n-1 with P(k) ∝ 1/(k+1)^s (rank 0 the most popular). */
export function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / Math.pow(k + 1, s)
  for (let k = 0; k < n; k++) cdf[k]! /= sum
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** Fields of /proc/<pid>/status in kB (VmRSS, VmHWM), or undefined once the process is gone. */
export function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/**
 * The fields of /proc/PID/stat after the command name (the 3rd field, the state, first), or
 * undefined once the process is gone. Times are in clock ticks (100 a second).
 */
function procStatFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** CPU seconds (user + system) a process has used so far. */
export function procCpuSeconds(pid: number): number | undefined {
  const fields = procStatFields(pid)
  return fields && (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * A process's minor page faults and its CPU seconds in the kernel so far. On a VM where a
 * fault of a fresh page costs microseconds, memory a process keeps giving back and touching
 * again shows here.
 */
export function procFaultsAndSystem(pid: number): { minorFaults: number; systemSeconds: number } | undefined {
  const fields = procStatFields(pid)
  return fields && { minorFaults: Number(fields[7]), systemSeconds: Number(fields[12]) / 100 }
}

/** CPU seconds per thread name (comm) of a process's living threads (Linux). */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>()
  for (const { name, seconds } of threadCpuByTid(pid).values()) out.set(name, (out.get(name) ?? 0) + seconds)
  return out
}

/** CPU seconds of each thread of a process by thread id, with its name now (Linux). */
function threadCpuByTid(pid: number): Map<string, { name: string; seconds: number }> {
  const out = new Map<string, { name: string; seconds: number }>()
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(tid, { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), seconds: (Number(fields[11]) + Number(fields[12])) / 100 })
    } catch {
      // the thread ended meanwhile
    }
  }
  return out
}

/** Nanoseconds a thread has waited for a CPU, ready to run (the kernel's schedstat run delay; 0 where unreadable). */
function runDelayNs(pid: number, tid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/)[1] ?? 0)
  } catch {
    return 0
  }
}

/**
 * Cores each thread of a process (by name) and another process (`other`, named `otherName`, e.g. Redis) used in
 * each second from `from` (performance.now()): what ran when a second's throughput dipped; and how long the
 * process's main thread (its JavaScript thread) waited for a CPU in each second, in ms (`mainWaits()`).
 * `sample()` may be called often; it reads /proc once a second.
 */
export function coresBySecond(pid: number, other: number | undefined, from: number, otherName = 'other') {
  const bySecond = new Map<string, number[]>()
  const mainWaited: number[] = []
  const read = () => ({ at: performance.now(), threads: threadCpuByTid(pid), other: other ? (procCpuSeconds(other) ?? 0) : 0, mainWaitNs: runDelayNs(pid, pid) })
  let last = read()
  return {
    sample(): void {
      if (performance.now() - last.at < 1000) return
      const now = read()
      const second = Math.floor((last.at - from) / 1000)
      const span = (now.at - last.at) / 1000
      const put = (name: string, used: number) => {
        const series = bySecond.get(name) ?? []
        series[second] = +(used / span).toFixed(2)
        bySecond.set(name, series)
      }
      // By thread id, then summed under each thread's name now: the engine's pool threads rename themselves by task.
      const used = new Map<string, number>()
      for (const [tid, t] of now.threads) used.set(t.name, (used.get(t.name) ?? 0) + t.seconds - (last.threads.get(tid)?.seconds ?? 0))
      for (const [name, sec] of used) put(`server ${name}`, sec)
      if (other) put(otherName, now.other - last.other)
      mainWaited[second] = Math.round((now.mainWaitNs - last.mainWaitNs) / 1e6 / span)
      last = now
    },
    /** Ms the main thread waited for a CPU in each second, gaps as 0. */
    mainWaits(): number[] {
      return Array.from(mainWaited, (ms) => ms ?? 0)
    },
    /** The series of the names that used at least `min` cores in some second, gaps as 0. */
    series(min: number): Record<string, number[]> {
      return Object.fromEntries([...bySecond].filter(([, s]) => s.some((c) => c >= min)).map(([name, s]) => [name, Array.from(s, (c) => c ?? 0)]))
    },
  }
}

/** Direct children of a process (Linux). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return ''
  }
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0]!
  } catch {
    return 'absent'
  }
}

/** Cores, memory, load and versions, written beside every figure. */
export function machine(): Record<string, unknown> {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
    } catch {
      return 'absent'
    }
  }
  return {
    cores: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gib: +(totalmem() / 2 ** 30).toFixed(1),
    free_memory_gib: +(freemem() / 2 ** 30).toFixed(1),
    load_average: loadavg().map((x) => +x.toFixed(2)),
    bun: version(BUN, ['--version']),
    node: version('node', ['--version']),
    chdb: pkg('chdb'),
    redis: version('redis-server', ['--version']),
    // wrk -v prints its version and exits 1.
    wrk: has('wrk') ? (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? 'absent') : 'absent',
    kernel: version('uname', ['-r']),
  }
}

/** Adds the counts of `from` into `into`, key by key. */
export function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v
}

/** Whether a command is on the PATH. */
export const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0

/** Installs Debian packages with apt-get when running as root on Debian; false when it cannot. */
export function aptInstall(pkgs: string[]): boolean {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (!isRoot || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) return false
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  console.error(`[bench] installing ${pkgs.join(' ')} (apt-get)`)
  const install = () => spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env }).status === 0
  // The package lists may be stale or absent on a fresh machine: update them only when the install fails.
  return install() || (spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env }).status === 0 && install())
}

/** wrk (Debian's package), the load generator in C, installed when missing; throws when it cannot be. */
export function ensureWrk(): string {
  if (!has('wrk') && !aptInstall(['wrk'])) throw new Error('wrk is missing: apt-get install wrk (or pass --generator bun)')
  return 'wrk'
}

export const loadNow = (): string => loadavg().map((x) => x.toFixed(2)).join(' ')

/** Prints a two-column table of figures. */
export function printTable(title: string, rows: [string, string | number][]): void {
  const w = Math.max(...rows.map(([k]) => k.length))
  console.log(`\n${title}`)
  console.log('-'.repeat(Math.min(100, w + 40)))
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${typeof v === 'number' ? fmt(v) : v}`)
}

export function fmt(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return String(n)
  if (Number.isInteger(n)) return n.toLocaleString('en-US')
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })
}

/** Writes test/bench/results/<name>.json (or `out` when given) with the date and machine. */
export function writeResult(name: string, body: Record<string, unknown>, out?: string): string {
  const file = out ?? join(RESULTS_DIR, `${name}.json`)
  mkdirSync(resolve(file, '..'), { recursive: true })
  writeFileSync(file, JSON.stringify({ benchmark: name, date: new Date().toISOString(), machine: machine(), ...body }, null, 2) + '\n')
  return file
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs a child in `cwd` with its output shown; rejects on a non-zero exit. */
export async function runChild(cmd: string, args: string[], cwd = ROOT): Promise<void> {
  const { spawn } = await import('node:child_process')
  return new Promise<void>((res, rej) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] })
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`${args.join(' ')} exited with ${code}`))))
  })
}

/** Runs a child and resolves with its stdout's last JSON line; rejects on a non-zero exit. */
export async function runJsonChild<T>(cmd: string, args: string[], env: Record<string, string | undefined> = process.env): Promise<T> {
  return (await startJsonChild<T>(cmd, args, env)).result
}

/** The line a load generator prints when its clock starts (after its own setup: signing the players' tokens). */
export const CLOCK_STARTED = '{"clock":"started"}'

/**
 * Starts a child: `started` resolves when it prints CLOCK_STARTED (rejects if it exits first),
 * `result` with its stdout's last JSON line (rejects on a non-zero exit).
 */
export async function startJsonChild<T>(cmd: string, args: string[], env: Record<string, string | undefined> = process.env): Promise<{ started: Promise<void>; result: Promise<T> }> {
  const { spawn } = await import('node:child_process')
  let markStarted!: () => void
  let failStart!: (err: Error) => void
  const started = new Promise<void>((res, rej) => ((markStarted = res), (failStart = rej)))
  const result = new Promise<T>((res, rej) => {
    const p = spawn(cmd, args, { cwd: ROOT, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    let clockSeen = false
    p.stdout.on('data', (d) => {
      out += d
      // Looked for until seen, not in the whole output again with every chunk after.
      if (!clockSeen && out.includes(CLOCK_STARTED)) (clockSeen = true), markStarted()
    })
    p.on('exit', (code) => {
      failStart(new Error(`${args.join(' ')} exited (${code}) before its clock started:\n${out.slice(-2000)}`))
      if (code !== 0) return rej(new Error(`${args.join(' ')} exited with ${code}:\n${out.slice(-2000)}`))
      const line = out.trim().split('\n').at(-1) ?? ''
      try {
        res(JSON.parse(line) as T)
      } catch {
        rej(new Error(`${args.join(' ')} printed no JSON result:\n${out.slice(-2000)}`))
      }
    })
  })
  // Each is observed by whoever awaits it; neither goes unhandled when only the other is awaited.
  started.catch(() => {})
  result.catch(() => {})
  return { started, result }
}

/** The server's `slow ClickHouse statement` warnings in its output (JSON log lines), slowest first. */
export function slowStatements(output: string): { kind: string; ms: number; waited_ms: number; query_id?: string; statement: string }[] {
  const out: ReturnType<typeof slowStatements> = []
  for (const line of output.split('\n')) {
    if (!line.includes('"slow ClickHouse statement"')) continue
    try {
      out.push(JSON.parse(line) as ReturnType<typeof slowStatements>[number])
    } catch {
      // a line cut by the end of the output
    }
  }
  return out.sort((a, b) => b.ms - a.ms).map(({ kind, ms, waited_ms, query_id, statement }) => ({ kind, ms, waited_ms, query_id, statement }))
}

/** The outcome a response's Cache-Status header names: hit, partial, miss, bypass, unavailable (or none). */
export function cacheOutcome(header: string | null): string {
  if (header === null) return 'none'
  if (/;\s*hit\b/.test(header)) return 'hit'
  if (header.includes('detail=redis-unavailable')) return 'unavailable'
  return /fwd=([a-z-]+)/.exec(header)?.[1] ?? 'other'
}

/**
 * The unique viewers a stats answer (JSON: `rows` of periods) counts over its periods, or 0 for
 * another answer: what a cold stats request had the engine merge, roughly (bench:api reports it
 * per burst, since the top videos' bursts read ever smaller videos).
 */
export function answerViewers(body: ArrayBuffer): number {
  try {
    const rows = (JSON.parse(new TextDecoder().decode(body)) as { rows?: { unique_viewers?: unknown }[] }).rows
    return Array.isArray(rows) ? rows.reduce((sum, r) => sum + (typeof r.unique_viewers === 'number' ? r.unique_viewers : 0), 0) : 0
  } catch {
    return 0
  }
}
