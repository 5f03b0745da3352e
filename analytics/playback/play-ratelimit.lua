-- Fixed-window counter of playback sessions started from one IP.
-- KEYS[1]  counter of the IP's current window
-- ARGV[1]  window length (seconds)
-- Returns {count in this window, seconds until the window ends}
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
