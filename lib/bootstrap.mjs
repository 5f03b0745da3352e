#!/usr/bin/env node
// Prepares a fresh machine and hands over to the real command. Plain Node, no
// dependencies: it runs before the npm packages are installed. Usage: node lib/bootstrap.mjs <start|test|run> [args...]
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const [mode = 'start', ...rest] = process.argv.slice(2)
const say = (msg) => console.error(`[bootstrap] ${msg}`)
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts })

function ensureNodeModules() {
  const marker = join(root, 'node_modules', '.package-lock.json')
  const lock = join(root, 'package-lock.json')
  const bun = join(root, 'node_modules', '.bin', 'bun')
  const fresh = existsSync(marker) && existsSync(bun) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs
  if (fresh) return
  // Not `npm ci`: chdb lists native packages for other platforms as optional dependencies,
  // and ones the registry lacks cannot be in the lockfile, which `npm ci` then refuses.
  // `npm install` still installs the locked versions and leaves the lockfile as it is.
  say('installing npm packages (npm install)')
  const r = run('npm', ['install', '--no-audit', '--no-fund'])
  if (r.status !== 0) process.exit(r.status ?? 1)
}

function hasRedisServer() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

function ensureRedisServer() {
  if (hasRedisServer()) return
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0
  if (!isRoot || !hasApt) {
    say('redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server), or set REDIS_URL to a running Redis.')
    process.exit(1)
  }
  say('installing redis-server (apt-get)')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  if (run('apt-get', ['update', '-qq'], { env }).status !== 0 || run('apt-get', ['install', '-y', '-qq', 'redis-server'], { env }).status !== 0 || !hasRedisServer()) {
    say('could not install redis-server through apt-get')
    process.exit(1)
  }
}

const major = Number(process.versions.node.split('.')[0])
if (major < 20) {
  say(`Node ${process.versions.node} is too old: Node 20 or newer is needed`)
  process.exit(1)
}
if (!existsSync(join(root, 'package-lock.json'))) {
  say('package-lock.json is missing: run from a checkout of the repository')
  process.exit(1)
}
ensureNodeModules()
const bun = join(root, 'node_modules', '.bin', 'bun')
// Tests always need a redis-server binary (they start their own); start needs one unless REDIS_URL is set.
if (mode === 'test' || !process.env.REDIS_URL) ensureRedisServer()

const commands = {
  test: [join(root, 'node_modules', '.bin', 'vitest'), ['run', ...rest]],
  start: [bun, [join(root, 'lib', 'main.ts'), ...rest]],
  run: [bun, rest],
}
if (!(mode in commands)) {
  say(`unknown mode ${mode}; use start, test or run`)
  process.exit(2)
}
// SYSTEM_MALLOC (default 1): Bun's processes start with `Malloc=1`. JavaScriptCore's own
// allocator (bmalloc) reads that variable once at start: set to anything, even 0, it hands
// every allocation to the system malloc, which keeps freed memory for reuse where bmalloc
// gives pages back to the kernel and faults them in again (on this project's VMs a fault of
// a fresh page costs about 10 µs; see README, Settings). Children (the server a benchmark
// or a test starts) inherit it. SYSTEM_MALLOC=0 starts them without it.
const systemMalloc = process.env.SYSTEM_MALLOC ?? '1'
if (systemMalloc !== '0' && systemMalloc !== '1') {
  say(`SYSTEM_MALLOC must be 0 or 1, not ${systemMalloc}`)
  process.exit(2)
}
const env = { ...process.env }
if (systemMalloc === '1') env.Malloc ??= '1'
else delete env.Malloc
// Bun's own allocator, mimalloc (3.5 in Bun 1.4.5), reads MIMALLOC_* variables at start. By
// default it gives freed pages back to the kernel 100 ms after they empty and purges the free
// holes of pages in use, and the edge's JavaScript thread then faults the same memory in again
// (10,000 faults a second at 50k events/s, each about 10 µs on this project's VMs). Pages kept
// 15 s and holes not purged: 10-20 % more events/s in the closed loop, a quarter fewer faults,
// for 20-100 MiB more peak RSS (README, Settings; test/bench/HISTORY.md). Values already set
// are left as they are.
env.MIMALLOC_PURGE_DELAY ??= '15000'
env.MIMALLOC_PURGE_HOLES ??= '0'
// The real command is a child: pass it the signals we get (a plain SIGTERM to npm must
// still let the server flush and stop), and leave with its status.
const [cmd, args] = commands[mode]
const child = spawn(cmd, args, { stdio: 'inherit', cwd: root, env })
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
