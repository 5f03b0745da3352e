-- Extends the settlement lock's expiry only if this runner still holds it (compare and expire).
-- KEYS[1]  lock key
-- ARGV[1]  token the runner took the lock with
-- ARGV[2]  new time to live, ms
-- Returns 1 when extended, 0 when the lock was not (or no longer) this runner's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
