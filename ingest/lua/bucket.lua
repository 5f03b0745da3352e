-- Token bucket, shared by the scripts that include this file before their own text.
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
  local wait, tokens, at = refill(state[1] and state[1] + 0 or nil, state[2] and state[2] + 0 or nil, now, rate, burst, cost)
  if wait > 0 then return wait end
  -- Whole numbers as '%d' text (a Lua number is formatted with '%.14g': see ingest.lua's int).
  redis.call('HSET', key, 't', tokens, 'at', string.format('%d', at))
  redis.call('PEXPIRE', key, string.format('%d', math.ceil(burst * 1000 / rate) + 1000))
  return 0
end
