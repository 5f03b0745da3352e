-- Token bucket: takes `cost` tokens or says how long to wait.
-- KEYS[1]  bucket hash {t = tokens left, at = last refill ms}
-- ARGV[1]  now (ms)   ARGV[2] refill rate (tokens per second)   ARGV[3] burst (capacity)   ARGV[4] cost
-- Returns  0 when allowed, else the milliseconds to wait before `cost` tokens are there.
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
end
if tokens < cost then
  return math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', tokens - cost, 'at', math.max(now, at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return 0
