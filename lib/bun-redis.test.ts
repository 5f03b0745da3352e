import { spawnSync } from 'node:child_process'
import { expect, it } from 'vitest'
import { freePort } from '../test/harness/engines.ts'
import { BUN, ROOT } from '../test/harness/process.ts'
import { createBunScripts } from './bun-redis.ts'

it('is not there under Node, so the edge uses ioredis', () => {
  expect(createBunScripts({ url: 'redis://127.0.0.1:1' })).toBeUndefined()
})

it("runs scripts through Bun's client as the edge needs: loads a missing script, fails at once while Redis is down, reconnects, times out", async () => {
  const port = await freePort()
  const r = spawnSync(BUN, ['test/harness/bun-redis-scenario.ts', String(port)], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  expect(r.status, r.stderr).toBe(0)
  const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!)
  // The first call finds no script on the server (NOSCRIPT), loads it and runs it; the second runs it.
  expect(report.first).toMatchObject({ ok: true, value: ['cs:test:n', 'a', 1] })
  expect(report.second).toMatchObject({ ok: true, value: ['cs:test:n', 'b', 2] })
  // runSoon: the first call, with nothing waiting for Redis, at once; the next two, made while it waits,
  // at the end of the turn in their order, after a call made at once later in that turn.
  expect(report.soon).toMatchObject({ ok: true, value: [['cs:test:n', 's1', 3], ['cs:test:n', 's2', 5], ['cs:test:n', 's3', 6], ['cs:test:n', 'now', 4]] })
  // Redis down: an error at once (the edge answers 503), not a command queued until it is back.
  expect(report.down.ok).toBe(false)
  expect(report.down.ms).toBeLessThan(900)
  expect(report.down_soon.ok).toBe(false)
  expect(report.down_soon.ms).toBeLessThan(900)
  // A new, empty Redis on the same address: the client is back and loads the script again.
  expect(report.back).toMatchObject({ ok: true, value: ['cs:test:n', 'd', 1] })
  // A Redis that stops answering: the command fails after the timeout (1 s here).
  expect(report.paused.ok).toBe(false)
  expect(report.paused.error).toMatch(/timed out/)
  // A call waiting for the end of its turn when the runner closes is refused.
  expect(report.closed_soon).toMatchObject({ ok: false, error: 'Redis client closed' })
}, 90_000)
