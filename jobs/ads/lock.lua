-- Releases a job lock only if this runner still holds it.
-- KEYS[1]  lock key
-- ARGV[1]  the holder's token
-- Returns 1 if released, 0 if the lock was someone else's or gone.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
