-- Hands undecided-and-abandoned events over to a new request (compare-and-set), so
-- that of several concurrent retries exactly one stores them.
-- KEYS[1]  session events hash (see ingest.lua)
-- KEYS[2]  session state hash (see ingest.lua)
-- ARGV[1]  new request id
-- ARGV[2..] pairs: event id, the exact record the caller saw
-- Returns  one integer per pair: 1 when the event now belongs to the new request, 0 when
--          another request holds it, 2 when no record of it is kept any more but the session's
--          state is (its events hash expired after the session sat idle: retries of it are
--          looked up in ClickHouse), 3 when neither is kept (expired with the session's token,
--          or lost).
local out = {}
local idle = nil
for i = 2, #ARGV, 2 do
  local id, seen = ARGV[i], ARGV[i + 1]
  local record = redis.call('HGET', KEYS[1], id)
  if not record then
    if idle == nil then idle = redis.call('HEXISTS', KEYS[2], 'seen') == 1 end
    out[#out + 1] = idle and 2 or 3
  elseif record == seen then
    local rest = string.match(seen, '^[^|]*|(.*)$')
    redis.call('HSET', KEYS[1], id, ARGV[1] .. '|' .. rest)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
