-- Releases the settlement lock only if this runner still holds it (compare and delete),
-- so a runner whose lock expired can never delete the lock of the runner after it.
-- KEYS[1]  lock key
-- ARGV[1]  token the runner took the lock with
-- Returns 1 when released, 0 when the lock was not (or no longer) this runner's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
