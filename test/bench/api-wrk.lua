-- bench:api's warm loop in wrk (Debian's package), a load generator in C that costs the
-- server's two cores far less than a JavaScript one. One connection per thread
-- (wrk -t N -c N): each thread's request() and response() then alternate, so the script
-- can time every answer itself and sort it by its Cache-Status header, as api.ts does.
--
--   wrk -t N -c N -d 20s -s test/bench/api-wrk.lua URL -- PATHS_FILE TOKEN OUT_FILE N
--
-- PATHS_FILE: one request path per line; thread k sends paths k, k+N, k+2N, ... in turn,
-- so that the N clients together go through the list as api.ts's own clients do.
-- OUT_FILE: JSON written by done(): per thread the latencies (ms) of 200 answers, those
-- that were not cache hits, the answers by outcome and the other statuses; wrk's errors.

-- The shared helpers, from this script's folder.
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "wrk-common.lua")
local now_ms = common.mono

-- The main state: each thread gets its index; done() reads what the threads recorded.
local threads = {}
function setup(thread)
  thread:set("index", #threads)
  threads[#threads + 1] = thread
end

-- A thread's state (each thread runs this file in a Lua state of its own). Globals are
-- what done() reads through thread:get; `index` was set by setup().
local paths, headers, stride, next_path, sent_at
all_ms, not_hit_ms, outcomes, statuses = {}, {}, {}, {}

function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  headers = { ["Authorization"] = "Bearer " .. args[2] }
  out_file = args[3]
  stride = tonumber(args[4])
  next_path = index
end

function request()
  local path = paths[(next_path % #paths) + 1]
  next_path = next_path + stride
  sent_at = now_ms()
  return wrk.format("GET", path, headers)
end

local function outcome_of(h)
  if h == nil then return "none" end
  if h:find(";%s*hit$") or h:find(";%s*hit[;,%s]") then return "hit" end
  if h:find("detail=redis-unavailable", 1, true) then return "unavailable" end
  return h:match("fwd=([%a-]+)") or "other"
end

function response(status, hdrs, body)
  local ms = now_ms() - sent_at
  if status ~= 200 then
    local k = tostring(status)
    statuses[k] = (statuses[k] or 0) + 1
    return
  end
  local cache = nil
  for name, value in pairs(hdrs) do
    if name:lower() == "cache-status" then cache = value end
  end
  local o = outcome_of(cache)
  outcomes[o] = (outcomes[o] or 0) + 1
  all_ms[#all_ms + 1] = ms
  if o ~= "hit" then not_hit_ms[#not_hit_ms + 1] = ms end
end

function done(summary, latency, requests)
  local parts = {}
  local file
  for i, t in ipairs(threads) do
    file = file or t:get("out_file")
    parts[i] = string.format('{"all_ms":%s,"not_hit_ms":%s,"outcomes":%s,"statuses":%s}',
      common.json_numbers(t:get("all_ms"), "%.3f"), common.json_numbers(t:get("not_hit_ms"), "%.3f"), common.json_counts(t:get("outcomes")), common.json_counts(t:get("statuses")))
  end
  local e = summary.errors
  local f = assert(io.open(file, "w"))
  f:write(string.format('{"duration_s":%.3f,"cpu_s":%.3f,"requests":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"threads":[%s]}',
    summary.duration / 1e6, common.own_cpu_seconds(), summary.requests, e.connect, e.read, e.write, e.timeout, table.concat(parts, ",")))
  f:close()
end
