-- Token bucket, shared by the scripts that include this file before their own text (after
-- numbers.lua).
-- refill(tokens, at, now ms, rate per second, burst, cost): the bucket {tokens left (nil: full),
-- at = last refill ms (nil: now)} after taking `cost` tokens: returns 0 and the tokens left and
-- refill time to keep, or the milliseconds to wait until `cost` tokens are there (and nothing to keep).
local function refill(tokens, at, now, rate, burst, cost)
  tokens = tokens or burst
  at = at or now
  if now > at then
    tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  end
  if tokens < cost then
    return math.ceil((cost - tokens) * 1000 / rate)
  end
  return 0, tokens - cost, math.max(now, at)
end

-- take_tokens(key, now ms, rate per second, burst, cost): takes `cost` tokens from the bucket
-- hash at `key` {t = tokens left, at = last refill ms} and returns 0, or leaves it as it is and
-- returns the milliseconds to wait until `cost` tokens are there.
local function take_tokens(key, now, rate, burst, cost)
  local state = redis.call('HMGET', key, 't', 'at')
  local wait, tokens, at = refill(num(state[1]), num(state[2]), now, rate, burst, cost)
  if wait > 0 then return wait end
  redis.call('HSET', key, 't', tokens, 'at', int(at))
  redis.call('PEXPIRE', key, int(math.ceil(burst * 1000 / rate) + 1000))
  return 0
end
