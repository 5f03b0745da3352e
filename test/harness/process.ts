import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')
export const BUN = resolve(ROOT, 'node_modules/.bin/bun')

export type ServerProcess = {
  proc: ChildProcess
  url: string
  output(): string
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>
  /** Signals the whole process group (the server and what it started). */
  kill(signal?: NodeJS.Signals): void
  /** Resolves once no process of the group is left (the server and what it started). */
  groupGone(timeoutMs?: number): Promise<void>
}

/** The environment of a test's server process (lib/main.ts under Bun): its data folder, a test Redis, 127.0.0.1, errors logged only; then `overrides`. */
export function testServerEnv(opts: { dataDir: string; port: number; redisUrl: string }, overrides: Record<string, string> = {}): Record<string, string | undefined> {
  return { ...process.env, NODE_ENV: 'test', DATA_DIR: opts.dataDir, PORT: String(opts.port), HOST: '127.0.0.1', REDIS_URL: opts.redisUrl, LOG_LEVEL: 'error', ...overrides }
}

/**
 * Starts a server process and waits until `GET /healthz` answers 200.
 * `detached` puts it in its own process group, so `kill` reaches its children too.
 */
export async function startServerProcess(opts: { cmd: string; args: string[]; env: Record<string, string | undefined>; port: number; timeoutMs?: number }): Promise<ServerProcess> {
  const proc = spawn(opts.cmd, opts.args, { cwd: ROOT, env: opts.env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<number | string>((res) => proc.once('exit', (code, signal) => res(code ?? signal ?? 'unknown')))
  let done = false
  void exited.then(() => (done = true))
  const url = `http://127.0.0.1:${opts.port}`
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000)
  for (;;) {
    if (done) throw new Error(`server exited before it was healthy:\n${out}`)
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) break
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      process.kill(-proc.pid!, 'SIGKILL')
      throw new Error(`server not healthy in time:\n${out}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    proc,
    url,
    output: () => out,
    exited,
    async groupGone(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        try {
          process.kill(-proc.pid!, 0)
        } catch {
          return
        }
        if (Date.now() > deadline) throw new Error('the process group did not exit in time')
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    kill(signal = 'SIGTERM') {
      try {
        process.kill(-proc.pid!, signal)
      } catch {
        /* already gone */
      }
    },
  }
}
