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
