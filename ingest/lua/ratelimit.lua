-- Token bucket of one key (numbers.lua and bucket.lua are included before this text).
-- KEYS[1]  bucket hash {t = tokens left, at = last refill ms}
-- ARGV[1]  now (ms)   ARGV[2] refill rate (tokens per second)   ARGV[3] burst (capacity)   ARGV[4] cost
-- Returns  0 when allowed, else the milliseconds to wait before `cost` tokens are there.
return take_tokens(KEYS[1], ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0, ARGV[4] + 0)
