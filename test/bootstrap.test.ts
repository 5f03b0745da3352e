import { spawnSync } from 'node:child_process'
import { expect, it } from 'vitest'
import { ROOT } from './harness/process.ts'

/** Runs `node lib/bootstrap.mjs run -e <code>` (Bun runs the code) and gives its status and output. */
function bootstrapRun(code: string, env: Record<string, string | undefined>) {
  const r = spawnSync('node', ['lib/bootstrap.mjs', 'run', '-e', code], { cwd: ROOT, env: env as NodeJS.ProcessEnv, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr }
}

const printMalloc = 'console.log(JSON.stringify(process.env.Malloc ?? null))'

it('starts Bun with Malloc=1 (JavaScriptCore allocating through the system malloc) unless SYSTEM_MALLOC=0', () => {
  const base: Record<string, string | undefined> = { ...process.env, Malloc: undefined, SYSTEM_MALLOC: undefined }
  expect(bootstrapRun(printMalloc, base)).toMatchObject({ status: 0, stdout: '"1"' })
  expect(bootstrapRun(printMalloc, { ...base, SYSTEM_MALLOC: '1' })).toMatchObject({ status: 0, stdout: '"1"' })
  // Bun's allocator switches on the variable's presence, whatever its value: 0 must remove it.
  expect(bootstrapRun(printMalloc, { ...base, SYSTEM_MALLOC: '0', Malloc: '1' })).toMatchObject({ status: 0, stdout: 'null' })
  const bad = bootstrapRun(printMalloc, { ...base, SYSTEM_MALLOC: 'yes' })
  expect(bad.status).toBe(2)
  expect(bad.stderr).toContain('SYSTEM_MALLOC must be 0 or 1, not yes')
}, 120_000)

it("starts Bun with its allocator keeping freed pages 15 s and the holes of pages in use, as Bun's mimalloc reads them, unless set otherwise", () => {
  const base: Record<string, string | undefined> = { ...process.env, MIMALLOC_PURGE_DELAY: undefined, MIMALLOC_PURGE_HOLES: undefined, MIMALLOC_VERBOSE: '1' }
  // mimalloc prints its options at start when MIMALLOC_VERBOSE is set: what Bun's allocator runs with, not just the variables.
  const option = (stderr: string, name: string) => new RegExp(`option '${name}': (-?\\d+)`).exec(stderr)?.[1]
  const defaults = bootstrapRun('1', base)
  expect(defaults.status).toBe(0)
  expect(option(defaults.stderr, 'purge_delay')).toBe('15000')
  expect(option(defaults.stderr, 'purge_holes')).toBe('0')
  const own = bootstrapRun('1', { ...base, MIMALLOC_PURGE_DELAY: '100', MIMALLOC_PURGE_HOLES: '1' })
  expect(option(own.stderr, 'purge_delay')).toBe('100')
  expect(option(own.stderr, 'purge_holes')).toBe('1')
}, 120_000)
