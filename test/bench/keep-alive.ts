/**
 * One player's HTTP/1.1 connection, kept open between its requests the way a browser or an
 * app keeps its own. Bun's fetch keeps at most 64 idle connections a process (a fixed pool,
 * oven-sh/bun#42608; `BUN_CONFIG_MAX_HTTP_REQUESTS` caps requests in flight, not the pool),
 * so with 1,000 players about half of bench:ingest's requests opened a new TCP connection
 * (5 December: 826 accepts a second at 1,800 requests a second, by `perf stat`), which no
 * fleet of players does. Bun shims undici's `Client` and `Pool` without an implementation,
 * so this is written out: one request at a time, a response read by its Content-Length or
 * chunked, the connection opened again for the next request once the server closed it or it
 * failed (the failed request rejects: the player counts a network error and retries).
 *
 * @example
 * const conn = keepAliveConnection('127.0.0.1', 8080)
 * const { status, body } = await conn.request('POST', '/v1/events', { 'content-type': 'application/json' }, '{"events":[]}')
 */
export type HttpAnswer = { status: number; headers: Record<string, string>; body: string }

type Waiter = { resolve(a: HttpAnswer): void; reject(err: Error): void }
type Socket = { write(data: Uint8Array | string): number; end(): void }

const HEAD_END = Buffer.from('\r\n\r\n')
const EMPTY: Buffer = Buffer.alloc(0)

/** A complete response at the start of `buf`, and the bytes it took; undefined while more must come. */
export function parseResponse(buf: Buffer): { answer: HttpAnswer; used: number } | undefined {
  const headEnd = buf.indexOf(HEAD_END)
  if (headEnd < 0) return undefined
  const lines = buf.toString('latin1', 0, headEnd).split('\r\n')
  const status = Number(lines[0]!.slice(9, 12))
  if (!/^HTTP\/1\.[01] \d{3}/.test(lines[0]!)) throw new Error(`not an HTTP/1.x status line: ${lines[0]}`)
  const headers: Record<string, string> = {}
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i]!.indexOf(':')
    if (colon > 0) headers[lines[i]!.slice(0, colon).trim().toLowerCase()] = lines[i]!.slice(colon + 1).trim()
  }
  let at = headEnd + 4
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const parts: Buffer[] = []
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at)
      if (lineEnd < 0) return undefined
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16)
      if (!Number.isFinite(size)) throw new Error('bad chunk size')
      if (size === 0) {
        // No trailers from the edge: the last chunk is "0\r\n\r\n".
        if (buf.length < lineEnd + 4) return undefined
        return { answer: { status, headers, body: Buffer.concat(parts).toString('utf8') }, used: lineEnd + 4 }
      }
      if (buf.length < lineEnd + 2 + size + 2) return undefined
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
    }
  }
  const length = Number(headers['content-length'] ?? 0)
  if (buf.length < at + length) return undefined
  return { answer: { status, headers, body: buf.toString('utf8', at, at + length) }, used: at + length }
}

export function keepAliveConnection(hostname: string, port: number, opts: { timeoutMs?: number } = {}) {
  const timeoutMs = opts.timeoutMs ?? 60_000
  /** The open connection; handlers of an older one leave a newer one alone. */
  let socket: Socket | undefined
  let opening: Promise<Socket> | undefined
  let buf: Buffer = EMPTY
  /** Bytes of the request not yet taken by the socket (written on drain). */
  let unsent: Buffer = EMPTY
  let waiter: Waiter | undefined
  let closed = false
  /** Connections opened so far (the first included). */
  let opened = 0

  const fail = (s: unknown, err: Error) => {
    if (s !== socket && socket !== undefined) return
    const w = waiter
    waiter = undefined
    socket = undefined
    buf = EMPTY
    unsent = EMPTY
    w?.reject(err)
  }
  const writeOut = (s: Socket) => {
    const n = s.write(unsent)
    unsent = n >= unsent.length ? EMPTY : unsent.subarray(Math.max(0, n))
  }

  const open = (): Promise<Socket> =>
    (opening ??= Bun.connect({
      hostname,
      port,
      socket: {
        data(s, chunk) {
          if (s !== socket) return
          const data = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
          let parsed
          try {
            parsed = parseResponse(data)
          } catch (err) {
            fail(s, err as Error)
            s.end()
            return
          }
          // Kept past this call: copied, the chunk's memory is Bun's.
          if (!parsed) return void (buf = data === chunk ? Buffer.from(chunk) : data)
          buf = parsed.used < data.length ? Buffer.from(data.subarray(parsed.used)) : EMPTY
          const w = waiter
          waiter = undefined
          if (parsed.answer.headers.connection?.toLowerCase() === 'close') {
            socket = undefined
            s.end()
          }
          w?.resolve(parsed.answer)
        },
        drain(s) {
          if (s === socket && unsent.length > 0) writeOut(s as unknown as Socket)
        },
        close(s) {
          fail(s, new Error('connection closed'))
        },
        error(s, err) {
          fail(s, err)
        },
      },
    }).then(
      (s) => {
        opened++
        opening = undefined
        socket = s as unknown as Socket
        if (closed) s.end()
        return socket
      },
      (err: unknown) => {
        opening = undefined
        throw err
      },
    ))

  return {
    /** Sends one request and resolves to its answer; one at a time per connection. */
    async request(method: string, path: string, headers: Record<string, string>, body: string): Promise<HttpAnswer> {
      if (waiter) throw new Error('a request is already in flight on this connection')
      if (closed) throw new Error('connection closed by its owner')
      const s = socket ?? (await open())
      const bodyBytes = Buffer.byteLength(body)
      let head = `${method} ${path} HTTP/1.1\r\nhost: ${hostname}:${port}\r\ncontent-length: ${bodyBytes}\r\n`
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
      return new Promise<HttpAnswer>((resolve, reject) => {
        const timer = setTimeout(() => {
          const stuck = socket
          fail(stuck, new Error(`no answer within ${timeoutMs} ms`))
          stuck?.end()
        }, timeoutMs)
        waiter = {
          resolve: (a) => (clearTimeout(timer), resolve(a)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        }
        // Written as a string (the socket encodes it): a Buffer of it first was ~10 % of the
        // generator's CPU in a profile. Only what the socket did not take is kept as bytes.
        const text = `${head}\r\n${body}`
        const n = s.write(text)
        if (n < Buffer.byteLength(head) + 2 + bodyBytes) unsent = Buffer.from(text).subarray(Math.max(0, n))
      })
    },
    close(): void {
      closed = true
      socket?.end()
      socket = undefined
    },
    get opened(): number {
      return opened
    },
  }
}

export type KeepAliveConnection = ReturnType<typeof keepAliveConnection>
