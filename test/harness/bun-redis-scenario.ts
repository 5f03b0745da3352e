/**
 * Runs under Bun (Bun's Redis client exists only there), started by lib/bun-redis.test.ts:
 * createBunScripts against a real redis-server that this script starts, stops, restarts
 * and pauses. Prints one JSON line with what each step gave.
 *
 *   bun test/harness/bun-redis-scenario.ts <free port>
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createBunScripts, scriptOf } from '../../lib/bun-redis.ts'

const port = Number(process.argv[2])
const start = async (): Promise<ChildProcess> => {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  // Up once it answers a plain TCP connection.
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = require('node:net').connect(port, '127.0.0.1')
      s.on('connect', () => (s.destroy(), resolve(true)))
      s.on('error', () => resolve(false))
    })
    if (up) return p
    await Bun.sleep(50)
  }
  throw new Error('redis-server did not start')
}
const stop = (p: ChildProcess) => new Promise<void>((resolve) => (p.once('exit', () => resolve()), p.kill('SIGKILL')))
/** The call's value, or its error, and how long it took. */
const timed = async (f: () => Promise<unknown>) => {
  const t = performance.now()
  try {
    return { ok: true, value: await f(), ms: Math.round(performance.now() - t) }
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err), ms: Math.round(performance.now() - t) }
  }
}

const script = scriptOf("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
let server = await start()
const fast = createBunScripts({ url: `redis://127.0.0.1:${port}` }, { timeoutMs: 1_000, reconnectMs: 100, maxRetries: 3 })!
const report: Record<string, unknown> = {}
report.first = await timed(() => fast.run(script, 1, ['cs:test:n', 'a'])) // the server lacks the script: loaded, then run
report.second = await timed(() => fast.run(script, 1, ['cs:test:n', 'b']))
// runSoon with nothing waiting for Redis sends at once; with a call waiting (s1), at the end of the
// turn, in the order of the calls: after a call made at once later in it.
const soon = [fast.runSoon(script, 1, ['cs:test:n', 's1']), fast.runSoon(script, 1, ['cs:test:n', 's2']), fast.runSoon(script, 1, ['cs:test:n', 's3'])]
report.soon = await timed(() => Promise.all([...soon, fast.run(script, 1, ['cs:test:n', 'now'])]))
await stop(server)
report.down = await timed(() => fast.run(script, 1, ['cs:test:n', 'c']))
report.down_soon = await timed(() => fast.runSoon(script, 1, ['cs:test:n', 'c']))
// Down long enough for Bun's client to give up its 3 reconnection attempts: a new client takes over.
await Bun.sleep(3_000)
report.still_down = await timed(() => fast.run(script, 1, ['cs:test:n', 'c']))
server = await start()
// A new, empty server: the client connects again and loads the script again.
let back: Awaited<ReturnType<typeof timed>> | undefined
const since = performance.now()
for (let i = 0; i < 200 && !back?.ok; i++) {
  back = await timed(() => fast.run(script, 1, ['cs:test:n', 'd']))
  if (!back.ok) await Bun.sleep(50)
}
report.back = { ...back, after_ms: Math.round(performance.now() - since) }
server.kill('SIGSTOP')
report.paused = await timed(() => fast.run(script, 1, ['cs:test:n', 'e']))
server.kill('SIGCONT')
// A call still waiting for the end of its turn when the runner is closed is refused, not left hanging
// (queued: another call waits for Redis meanwhile; with none, runSoon would send it at once).
const waiting = fast.run(script, 1, ['cs:test:n', 'f']).catch(() => {})
const late = fast.runSoon(script, 1, ['cs:test:n', 'g'])
fast.close()
report.closed_soon = await timed(() => late)
await waiting
await stop(server)
console.log(JSON.stringify(report))
process.exit(0)
