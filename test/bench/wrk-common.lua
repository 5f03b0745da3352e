-- Helpers shared by the benchmarks' wrk scripts (api-wrk.lua, ingest-wrk.lua), loaded by
-- each with dofile from this folder: clocks, wrk's own CPU, small JSON writers.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } cs_timespec;
int clock_gettime(int clock_id, cs_timespec *tp);
long sysconf(int name);
]]
local clock = ffi.new("cs_timespec")
local function clock_ms(id)
  ffi.C.clock_gettime(id, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local M = {}
local CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1
--- Milliseconds of the monotonic clock (for durations).
function M.mono() return clock_ms(CLOCK_MONOTONIC) end
--- Milliseconds since the epoch, whole (for event timestamps).
function M.wall() return math.floor(clock_ms(CLOCK_REALTIME)) end

--- CPU seconds wrk itself used (all its threads), from /proc/self/stat's utime and stime.
function M.own_cpu_seconds()
  local f = io.open("/proc/self/stat")
  if not f then return -1 end
  local stat = f:read("*a")
  f:close()
  -- Fields after the command name (in parentheses): state is field 3, utime 14, stime 15.
  local fields = {}
  for x in stat:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = x end
  local _SC_CLK_TCK = 2
  return (tonumber(fields[12]) + tonumber(fields[13])) / tonumber(ffi.C.sysconf(_SC_CLK_TCK))
end

--- A JSON array of numbers, each written with `fmt`.
function M.json_numbers(xs, fmt)
  local parts = {}
  for i = 1, #xs do parts[i] = string.format(fmt, xs[i]) end
  return "[" .. table.concat(parts, ",") .. "]"
end

--- A JSON object of counts (keys are plain words or numbers).
function M.json_counts(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = string.format('"%s":%d', tostring(k), v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

return M
