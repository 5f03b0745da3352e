-- Marks a request as stored in ClickHouse ('1') or failed for certain ('0'), in the hash of
-- its session's event decisions, so that the mark lives exactly as long as the records that
-- name the request: a retry reads a record, then the mark of its request.
-- KEYS[1]  session events hash (see ingest.lua)
-- ARGV[1]  field of the mark: "c:<request id>" (event ids are UUIDs: no clash)
-- ARGV[2]  '1' or '0'
-- Returns  1 when marked; 0 when the hash has expired (no record names the request any
--          more, and creating the hash would hide that its session's decisions expired).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
