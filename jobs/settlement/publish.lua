-- Bumps the settlement version after a commit and, with it, publishes the visible runs the
-- commit left, atomically: readers that see the new version find the snapshot made for it.
-- KEYS[1]  the settlement version (a counter)
-- KEYS[2]  the snapshot: "<version>\n<visible runs as JSON>"
-- KEYS[3]  the settlement lock (only when ARGV[2] is not '')
-- ARGV[1]  the visible runs as JSON ('': none to publish; the snapshot of an older version is deleted)
-- ARGV[2]  the lock's value as its holder took it ('': no lock to check)
-- ARGV[3]  seconds the snapshot is kept (readers without it read the runs from ClickHouse)
-- The version is bumped whatever happens: readers must not keep answers of before the commit.
-- The snapshot is written only while the lock is still the writer's: a writer that lost it may
-- have read the visible runs before a later writer's commit.
-- Returns the new version.
local v = redis.call('INCR', KEYS[1])
if ARGV[1] ~= '' and (ARGV[2] == '' or redis.call('GET', KEYS[3]) == ARGV[2]) then
  redis.call('SET', KEYS[2], v .. '\n' .. ARGV[1], 'EX', ARGV[3])
else
  redis.call('DEL', KEYS[2])
end
return v
