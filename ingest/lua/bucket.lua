-- Token bucket, shared by the scripts that include this file before their own text.
-- take_tokens(key, now ms, rate per second, burst, cost): takes `cost` tokens from the
-- bucket hash {t = tokens left, at = last refill ms} and returns 0, or leaves it as it
-- is and returns the milliseconds to wait until `cost` tokens are there.
local function take_tokens(key, now, rate, burst, cost)
  local state = redis.call('HMGET', key, 't', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  if now > at then
    tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  end
  if tokens < cost then
    return math.ceil((cost - tokens) * 1000 / rate)
  end
  redis.call('HSET', key, 't', tokens - cost, 'at', math.max(now, at))
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
  return 0
end
