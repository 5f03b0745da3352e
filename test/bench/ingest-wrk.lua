-- bench:ingest's players in wrk (Debian's package): the load generator in C, so that the
-- players take as little as they can of the two cores the edge runs on. Started by
-- ingest-load-wrk.ts, which signs the playback sessions beforehand (ES256, in Bun) and
-- turns what done() writes into the same result as ingest-load.ts.
--
--   wrk -t T -c C -d Ss --timeout 30s -s ingest-wrk.lua URL -- SESSIONS OUT T PLAYERS REPEAT BAD THINK_MS SEED
--
-- SESSIONS: one signed playback session per line (token, video, creator, ad, ip, tab-separated);
-- thread k takes lines k, k+T, ... in turn. Each thread runs PLAYERS players; a connection
-- that is free sends the next batch of the first player that is ready (no batch in flight,
-- not waiting out a Retry-After), so a player has one batch in flight at most, and C
-- batches are in flight at once. Players behave as in ingest-load.ts: a session of 3 to 12
-- batches of 10 to 50 events per video (play, ad impression, progress, pause, end), each
-- batch retried until it gets a 200, a share sent first with a spoiled token (401), a share
-- sent again after its 200 (nothing may change). Event ids encode the player's slot and a
-- sequence number, so the acknowledged ids are, per slot, the prefix 0..acked-1.
--
-- An answer is matched to its request by the X-Request-Id the edge echoes back (wrk tells
-- the script nothing about connections). THINK_MS > 0 (also in the environment as
-- CS_WRK_THINK_MS): each connection waits 0.5 to 1.5 times that between two batches (a
-- paced load); 0: closed loop.

-- The shared helpers, from this script's folder.
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "wrk-common.lua")
local mono, wall = common.mono, common.wall

-- The main state: each thread gets its index; done() reads what the threads recorded.
local threads = {}
function setup(thread)
  thread:set("index", #threads)
  threads[#threads + 1] = thread
end

-- A thread's state. Globals are what done() reads through thread:get; `index` was set by setup().
local sessions, next_session, players, ready, ready_head, ready_tail, waiting, pending
local repeat_share, bad_share, think_ms, t0, request_no
statuses, rejected, per_second, acked, latencies, sent_at = {}, {}, {}, {}, {}, {}
accepted, duplicates, requests, sessions_started, sessions_reused, unmatched = 0, 0, 0, 0, 0, 0

function init(args)
  local thread_count = tonumber(args[3])
  local per_thread = tonumber(args[4])
  out_file = args[2]
  repeat_share, bad_share, think_ms = tonumber(args[5]), tonumber(args[6]), tonumber(args[7])
  math.randomseed(tonumber(args[8]) + index)
  sessions = {}
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % thread_count == index then
      local token, video, creator, ad, ip = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
      sessions[#sessions + 1] = { token = token, video = video, creator = creator, ad = ad, ip = ip }
    end
    line_no = line_no + 1
  end
  next_session = 1
  players, ready, waiting, pending = {}, {}, {}, {}
  for i = 1, per_thread do
    local p = { slot = index * per_thread + (i - 1), seq = 0 }
    players[i] = p
    ready[i] = p
    acked[p.slot] = 0
  end
  -- The ready queue holds ready[ready_head .. ready_tail].
  ready_head, ready_tail = 1, per_thread
  request_no = 0
  t0 = mono()
end

local function start_session(p)
  local s = sessions[next_session]
  next_session = next_session + 1
  if next_session > #sessions then
    next_session = 1
    sessions_reused = sessions_reused + 1
  end
  sessions_started = sessions_started + 1
  p.session, p.batches, p.b, p.position = s, 3 + math.random(0, 9), 0, 0
end

local function event_id(slot, seq) return string.format("%08d-b0b0-4000-8000-%012d", slot, seq) end

-- The player's next batch: its body, its size, and whether a spoiled copy goes first.
local function next_batch(p)
  if p.session == nil or p.b >= p.batches then start_session(p) end
  local n = 10 + math.random(0, 40)
  local now = wall()
  local parts = {}
  local last_batch = p.b == p.batches - 1
  for i = 0, n - 1 do
    local id = event_id(p.slot, p.seq + i)
    local ts = now - (n - 1 - i) * 20
    if p.b == 0 and i == 0 then
      parts[i + 1] = string.format('{"id":"%s","type":"play","ts":%d,"position_ms":0}', id, ts)
    elseif p.b == 0 and i == 1 then
      parts[i + 1] = string.format('{"id":"%s","type":"ad_impression","ts":%d,"position_ms":0,"ad_id":"%s"}', id, ts, p.session.ad)
    elseif last_batch and i == n - 1 then
      parts[i + 1] = string.format('{"id":"%s","type":"end","ts":%d,"position_ms":%d}', id, ts, p.position)
    elseif i % 17 == 16 then
      parts[i + 1] = string.format('{"id":"%s","type":"pause","ts":%d,"position_ms":%d}', id, ts, p.position)
    else
      p.position = p.position + 1000
      parts[i + 1] = string.format('{"id":"%s","type":"progress","ts":%d,"position_ms":%d,"watched_ms":1000}', id, ts, p.position)
    end
  end
  p.body = '{"events":[' .. table.concat(parts, ",") .. "]}"
  p.n = n
  p.b = p.b + 1
  p.kind = math.random() < bad_share and "bad" or "batch"
end

local function push_ready(p)
  ready_tail = ready_tail + 1
  ready[ready_tail] = p
end

-- Players waiting out a Retry-After go back to the ready queue once it has passed.
local function wake(now)
  if #waiting == 0 then return end
  local still = {}
  for _, p in ipairs(waiting) do
    if p.ready_at <= now then push_ready(p) else still[#still + 1] = p end
  end
  waiting = still
end

local function soonest_wait(now)
  local soonest = math.huge
  for _, p in ipairs(waiting) do soonest = math.min(soonest, p.ready_at - now) end
  return soonest
end

local function take_ready(now)
  wake(now)
  if ready_head > ready_tail then
    -- Every player waits out a Retry-After (there are three players per connection, so only under a long
    -- overload): the one due first goes now, early unless delay() held the connection back.
    local best = 1
    for i, p in ipairs(waiting) do
      if p.ready_at < waiting[best].ready_at then best = i end
    end
    return assert(table.remove(waiting, best), "no player is ready or waiting: more players than connections are needed")
  end
  local p = ready[ready_head]
  ready[ready_head] = nil
  ready_head = ready_head + 1
  return p
end

local function spoil(token)
  local dot = token:match(".*()%.")
  local first = token:sub(dot + 1, dot + 1)
  return token:sub(1, dot) .. (first == "A" and "B" or "A") .. token:sub(dot + 2)
end

-- Defined only for a paced load (wrk reads whether the script has delay() before init(),
-- hence the environment): with it, wrk sends every request through a timer event, whose
-- list it scans, which costs the closed loop's thousand connections dearly.
if (tonumber(os.getenv("CS_WRK_THINK_MS") or "0") or 0) > 0 then
  function delay()
    local now = mono()
    local wait = think_ms * (0.5 + math.random())
    wake(now)
    if ready_head > ready_tail and #waiting > 0 then wait = math.max(wait, soonest_wait(now)) end
    return math.floor(wait)
  end
end

-- A request wrk gave up on (its --timeout) gets no response(): its player retries it.
local function sweep(now)
  for rid, e in pairs(pending) do
    if now - e.sent > 35000 then
      pending[rid] = nil
      if e.kind == "repeat" then e.p.body = nil end
      e.p.ready_at = now
      waiting[#waiting + 1] = e.p
    end
  end
end

function request()
  local now = mono()
  if request_no % 1000 == 999 then sweep(now) end
  local p = take_ready(now)
  if p.body == nil then next_batch(p) end
  local kind = p.kind
  local token = p.session.token
  if kind == "bad" then token = spoil(token) end
  request_no = request_no + 1
  local rid = string.format("w%d-%d", index, request_no)
  pending[rid] = { p = p, kind = kind, sent = now }
  requests = requests + 1
  return wrk.format("POST", "/v1/events", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = p.session.ip,
    ["X-Request-Id"] = rid,
  }, p.body)
end

local function header(hdrs, name)
  local v = hdrs[name]
  if v ~= nil then return v end
  for k, value in pairs(hdrs) do
    if k:lower() == name then return value end
  end
  return nil
end

local function count_body(body, now)
  local a = tonumber(body:match('"accepted":(%d+)')) or 0
  local d = tonumber(body:match('"duplicates":(%d+)')) or 0
  accepted = accepted + a
  duplicates = duplicates + d
  local sec = math.floor((now - t0) / 1000)
  per_second[sec] = (per_second[sec] or 0) + a
  for reason in body:gmatch('"reason":"([^"]+)"') do rejected[reason] = (rejected[reason] or 0) + 1 end
end

function response(status, hdrs, body)
  local now = mono()
  local rid = header(hdrs, "x-request-id")
  local e = rid and pending[rid]
  if not e then
    unmatched = unmatched + 1
    return
  end
  pending[rid] = nil
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  local p = e.p
  if status == 200 then
    latencies[#latencies + 1] = now - e.sent
    sent_at[#sent_at + 1] = (e.sent - t0) / 1000
    count_body(body, now)
  end
  if e.kind == "bad" then
    -- The spoiled copy went first; the batch itself follows.
    p.kind = "batch"
  elseif e.kind == "batch" then
    if status ~= 200 then
      -- Retried as it is after the Retry-After (at most 2 s), as players do.
      local after = tonumber(header(hdrs, "retry-after") or "1") or 1
      p.ready_at = now + math.min(2000, after * 1000)
      waiting[#waiting + 1] = p
      return
    end
    p.seq = p.seq + p.n
    acked[p.slot] = p.seq
    -- A player that missed the answer sends the same batch again: nothing may change.
    if math.random() < repeat_share then p.kind = "repeat" else p.body = nil end
  else
    p.body = nil
  end
  push_ready(p)
end

function done(summary, latency, reqs)
  local parts = {}
  local file
  for i, t in ipairs(threads) do
    file = file or t:get("out_file")
    parts[i] = string.format(
      '{"statuses":%s,"rejected":%s,"per_second":%s,"acked":%s,"latencies_ms":%s,"sent_at_s":%s,"accepted":%d,"duplicates":%d,"requests":%d,"sessions_started":%d,"sessions_reused":%d,"unmatched":%d}',
      common.json_counts(t:get("statuses")), common.json_counts(t:get("rejected")), common.json_counts(t:get("per_second")), common.json_counts(t:get("acked")),
      common.json_numbers(t:get("latencies"), "%.2f"), common.json_numbers(t:get("sent_at"), "%.3f"),
      t:get("accepted"), t:get("duplicates"), t:get("requests"), t:get("sessions_started"), t:get("sessions_reused"), t:get("unmatched"))
  end
  local e = summary.errors
  local f = assert(io.open(file, "w"))
  f:write(string.format('{"duration_s":%.3f,"cpu_s":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"threads":[%s]}',
    summary.duration / 1e6, common.own_cpu_seconds(), e.connect, e.read, e.write, e.timeout, table.concat(parts, ",")))
  f:close()
end
