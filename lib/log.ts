/** Structured one-line JSON logs on stderr. */
export type Logger = {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

const levels = { debug: 10, info: 20, warn: 30, error: 40 } as const

export function createLogger(level: keyof typeof levels = 'info', base: Record<string, unknown> = {}): Logger {
  const min = levels[level]
  const write = (lvl: keyof typeof levels) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (levels[lvl] < min) return
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields }) + '\n')
  }
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') }
}
