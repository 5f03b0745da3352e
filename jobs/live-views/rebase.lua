-- Rebases a live view counter on ClickHouse's total, keeping the increments made
-- since the caller read the counter.
-- KEYS[1]  the video's live view counter
-- ARGV[1]  the counter as the caller read it before asking ClickHouse
-- ARGV[2]  counted views of the video in ClickHouse
-- Returns  the new value
local seen = tonumber(ARGV[1])
local total = tonumber(ARGV[2])
local now = tonumber(redis.call('GET', KEYS[1]) or '0')
local value = total + math.max(0, now - seen)
redis.call('SET', KEYS[1], value)
return value
