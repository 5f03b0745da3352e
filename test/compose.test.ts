import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { loadSettings } from '../lib/config.ts'
import { REDIS_TUNING } from '../lib/redis-server.ts'

// No Docker engine runs here: these tests read docker-compose.yml and the Dockerfile and
// check that what they would run exists and fits together.

const root = resolve(import.meta.dirname, '..')

type Service = {
  image?: string
  build?: string | { context?: string; dockerfile?: string }
  command?: string[] | string
  environment?: Record<string, string | number | boolean> | string[]
  volumes?: (string | { type?: string; source?: string; target: string })[]
  secrets?: (string | { source: string; target?: string })[]
  depends_on?: string[] | Record<string, { condition?: string }>
  healthcheck?: { test?: string[] | string; disable?: boolean }
  ports?: (string | number)[]
  restart?: string
}
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown>; secrets?: Record<string, { file?: string }> }

const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as Compose
const services = Object.entries(compose.services)
const built = services.filter(([, s]) => s.build !== undefined)

const dependencies = (s: Service): Record<string, string | undefined> =>
  Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, undefined])) : Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, v]) => [d, v.condition]))

/** A one-shot service: never restarted, and what depends on it waits for it to finish. */
const oneShot = (name: string) =>
  compose.services[name]?.restart === 'no' && services.some(([, s]) => dependencies(s)[name] === 'service_completed_successfully')

/** The environment compose would give, with `${VAR:-default}` taken at its default. */
function environment(s: Service): Record<string, string> {
  const entries = Array.isArray(s.environment) ? s.environment.map((e) => e.split(/=(.*)/s).slice(0, 2)) : Object.entries(s.environment ?? {})
  return Object.fromEntries(entries.map(([k, v]) => [k, String(v ?? '').replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]))
}

const command = (s: Service) => (typeof s.command === 'string' ? s.command.split(/\s+/) : (s.command ?? []))
const roles = (s: Service) => command(s).flatMap((arg, i, all) => (arg === '--role' ? [all[i + 1] ?? ''] : arg.startsWith('--role=') ? [arg.slice(7)] : []))

describe('docker-compose.yml', () => {
  it('runs ClickHouse, Redis, the migrations and the three app roles', () => {
    expect(compose.services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server(:|$)/)
    expect(compose.services.redis?.image).toMatch(/^redis:7(\b|$)/)
    expect(command(compose.services.redis!)).toEqual(expect.arrayContaining(['--appendonly', 'yes']))
    // The same tuning as the private redis-server of local mode, argument by argument.
    const redisArgs = command(compose.services.redis!)
    for (let i = 0; i < REDIS_TUNING.length; i += 2) expect(redisArgs.slice(redisArgs.indexOf(REDIS_TUNING[i]!), redisArgs.indexOf(REDIS_TUNING[i]!) + 2)).toEqual(REDIS_TUNING.slice(i, i + 2))
    expect(built.flatMap(([, s]) => roles(s)).sort()).toEqual(['analytics', 'ingest', 'jobs'])
    expect(command(compose.services.migrate!)).toEqual(['bun', 'migrations/cli.ts'])
  })

  it('gives every service a health check, or makes it a one-shot that others wait for', () => {
    for (const [name, s] of services) {
      if (oneShot(name)) continue
      expect(s.healthcheck?.test, `${name} has no healthcheck`).toBeTruthy()
      expect(s.healthcheck?.disable, name).not.toBe(true)
    }
    expect(oneShot('migrate')).toBe(true)
  })

  it('checks the app services on /healthz', () => {
    for (const [name, s] of built.filter(([n]) => !oneShot(n))) expect([s.healthcheck?.test].flat().join(' '), name).toMatch(/\/healthz\b/)
  })

  it('starts the app only after ClickHouse and Redis are healthy and the migrations have succeeded', () => {
    for (const [name, s] of services) {
      for (const [dep, condition] of Object.entries(dependencies(s))) {
        expect(compose.services[dep], `${name} depends on unknown service ${dep}`).toBeDefined()
        if (condition === 'service_healthy') expect(compose.services[dep]!.healthcheck?.test, `${dep} has no healthcheck`).toBeTruthy()
        if (condition === 'service_completed_successfully') expect(oneShot(dep), `${dep} is not one-shot`).toBe(true)
      }
    }
    for (const [name, s] of built.filter(([n]) => !oneShot(n)))
      expect(dependencies(s), name).toEqual({ clickhouse: 'service_healthy', redis: 'service_healthy', migrate: 'service_completed_successfully' })
    expect(dependencies(compose.services.migrate!)).toEqual({ clickhouse: 'service_healthy' })
  })

  it('declares every named volume it mounts, and mounts every volume it declares', () => {
    const used = new Set<string>()
    for (const [name, s] of services) {
      for (const v of s.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0]! : v.type === 'bind' ? '.' : (v.source ?? '')
        if (source.startsWith('.') || source.startsWith('/') || source.startsWith('~')) continue
        expect(compose.volumes, `${name} mounts undeclared volume ${source}`).toHaveProperty([source])
        used.add(source)
      }
    }
    expect([...used].sort()).toEqual(Object.keys(compose.volumes ?? {}).sort())
    expect(compose.services.clickhouse!.volumes).toContain('clickhouse-data:/var/lib/clickhouse')
    expect(compose.services.redis!.volumes).toContain('redis-data:/data')
  })

  it('mounts the playback key set as a declared secret wherever PLAYBACK_JWKS_FILE points at it', () => {
    for (const [name, s] of built.filter(([n]) => !oneShot(n))) {
      const mounted = (s.secrets ?? []).map((x) => (typeof x === 'string' ? { source: x, target: `/run/secrets/${x}` } : { source: x.source, target: x.target?.startsWith('/') ? x.target : `/run/secrets/${x.target ?? x.source}` }))
      for (const m of mounted) expect(compose.secrets, `${name} uses undeclared secret ${m.source}`).toHaveProperty([m.source])
      expect(mounted.map((m) => m.target), name).toContain(environment(s).PLAYBACK_JWKS_FILE)
    }
  })

  it('points every app service at the ClickHouse and Redis services, with settings lib/config.ts accepts', () => {
    for (const [name, s] of built) {
      const env = environment(s)
      expect(env.CLICKHOUSE_URL, name).toBe('http://clickhouse:8123')
      expect(env.REDIS_URL, name).toBe('redis://redis:6379')
      const settings = loadSettings(env)
      expect(settings.embedded, name).toBe(false)
    }
  })

  it('runs only script files that exist in the repository', () => {
    for (const [name, s] of built) {
      const [runtime, script] = command(s)
      expect(runtime, name).toBe('bun')
      expect(script, name).toMatch(/\.ts$/)
      expect(existsSync(join(root, script!)), `${name} runs ${script}, which does not exist`).toBe(true)
    }
  })

  it('publishes no host port twice', () => {
    const hostPorts = services.flatMap(([, s]) => (s.ports ?? []).map((p) => String(p).split(':').slice(-2, -1)[0] ?? String(p)))
    expect(new Set(hostPorts).size).toBe(hostPorts.length)
  })

  it('passes only --role values that lib/main.ts accepts', () => {
    const wanted = [...new Set(built.flatMap(([, s]) => roles(s)))]
    expect(wanted.length).toBeGreaterThan(0)
    for (const role of wanted) {
      // PORT=abc stops main.ts right after it has parsed --role, so nothing starts.
      const child = spawnSync(join(root, 'node_modules/.bin/bun'), ['lib/main.ts', '--role', role], {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: 'abc' },
        encoding: 'utf8',
        timeout: 30_000,
      })
      expect(child.stderr, role).not.toMatch(/--role must be one of/)
      expect(child.stderr, role).toMatch(/^\s+PORT: /m)
      expect(child.status, role).toBe(2)
    }
  })

  it('has main.ts refuse a --role it does not know (so the check above means something)', () => {
    const child = spawnSync(join(root, 'node_modules/.bin/bun'), ['lib/main.ts', '--role', 'reporting'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: 'abc' },
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(child.status).toBe(2)
    expect(child.stderr).toMatch(/--role must be one of all, ingest, analytics, jobs; got reporting/)
  })
})

describe('Dockerfile', () => {
  const contexts = [...new Set(built.map(([, s]) => (typeof s.build === 'string' ? { context: s.build } : s.build!)).map((b) => JSON.stringify([b.context ?? '.', b.dockerfile ?? 'Dockerfile'])))].map(
    (j) => JSON.parse(j) as [string, string],
  )

  it('exists for every build the compose file asks for', () => {
    expect(contexts).toEqual([['.', 'Dockerfile']])
    for (const [context, dockerfile] of contexts) expect(existsSync(join(root, context, dockerfile))).toBe(true)
  })

  const text = readFileSync(join(root, 'Dockerfile'), 'utf8')
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))

  it('copies only sources that exist in the build context', () => {
    const copies = instructions.filter((l) => /^(COPY|ADD)\s/i.test(l) && !/--from=/.test(l))
    expect(copies.length).toBeGreaterThan(0)
    for (const line of copies) {
      const args = line.split(/\s+/).slice(1).filter((a) => !a.startsWith('--'))
      for (const source of args.slice(0, -1)) expect(existsSync(join(root, source)), `${line}: ${source} does not exist`).toBe(true)
    }
  })

  it("sets the allocator's variables the launcher sets (lib/bootstrap.mjs), so the image runs as the benchmarks measured", () => {
    const launcher = readFileSync(join(root, 'lib', 'bootstrap.mjs'), 'utf8')
    const wanted = [...launcher.matchAll(/env\.(MIMALLOC_\w+) \?\?= '([^']*)'/g)].map((m) => `${m[1]}=${m[2]}`)
    expect(wanted).toEqual(['MIMALLOC_PURGE_DELAY=15000', 'MIMALLOC_PURGE_HOLES=0'])
    const env = instructions.filter((l) => /^ENV\s/i.test(l)).flatMap((l) => l.split(/\s+/).slice(1))
    for (const kv of [...wanted, 'Malloc=1']) expect(env).toContain(kv)
  })

  it('copies every folder the app imports from', () => {
    const copied = instructions.filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l)).flatMap((l) => l.split(/\s+/).slice(1, -1))
    for (const dir of ['lib', 'migrations', 'ingest']) expect(copied).toContain(dir)
  })

  it('installs from the lockfile and runs on the Bun package.json pins, as a user other than root', () => {
    expect(instructions.some((l) => /^RUN\s.*\b(npm ci|npm install|bun install --frozen-lockfile)\b/.test(l))).toBe(true)
    const froms = instructions.filter((l) => /^FROM\s/i.test(l))
    expect(froms.at(-1)).toMatch(/^FROM\s+oven\/bun[:@\s]/)
    // The image's Bun is the one npm installs for `npm start` and the benchmarks (a GC change between 1.3 and 1.4 alone moved the paced p99 threefold).
    const pinned = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies.bun
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/)
    expect(froms.at(-1)).toMatch(new RegExp(`^FROM\\s+oven/bun:${pinned!.replace(/\./g, '\\.')}-`))
    const finalStage = instructions.slice(instructions.lastIndexOf(froms.at(-1)!))
    const user = finalStage.filter((l) => /^USER\s/i.test(l)).at(-1)
    expect(user).toBeDefined()
    expect(user).not.toMatch(/^USER\s+(root|0)(:|$)/)
  })
})
