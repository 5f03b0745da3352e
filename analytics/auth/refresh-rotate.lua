-- Rotates a refresh token of a family, detecting reuse.
-- KEYS[1]  family key: string, the user id; absent once the family is revoked or expired
-- KEYS[2]  key of the presented token: string 'active' or 'used'
-- KEYS[3]  key of the token that replaces it
-- ARGV[1]  lifetime of the family and the new token (seconds)
-- Returns {'ok', user id} | {'reuse'} (family now revoked) | {'revoked'} | {'unknown'}
local user = redis.call('GET', KEYS[1])
if not user then return {'revoked'} end
local state = redis.call('GET', KEYS[2])
if not state then return {'unknown'} end
if state ~= 'active' then
  redis.call('DEL', KEYS[1])
  return {'reuse'}
end
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[2], 'used', 'KEEPTTL')
redis.call('SET', KEYS[3], 'active', 'EX', ttl)
redis.call('EXPIRE', KEYS[1], ttl)
return {'ok', user}
