-- Keeps a reader's snapshot of the visible runs for the version it read them at, unless the
-- stored one is of that version or a later one (readers of an older version may finish last).
-- KEYS[1]  the snapshot: "<version>\n<visible runs as JSON>"
-- ARGV[1]  the version the runs were read at (they hold every commit up to it)
-- ARGV[2]  the visible runs as JSON
-- ARGV[3]  seconds the snapshot is kept
-- Returns 1 when written, 0 when left as it was.
local stored = redis.call('GET', KEYS[1])
if stored then
  local at = tonumber(string.match(stored, '^(%d+)\n'))
  if at and at >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. ARGV[2], 'EX', ARGV[3])
return 1
