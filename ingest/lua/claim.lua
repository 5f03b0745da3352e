-- Hands undecided-and-abandoned events over to a new request (compare-and-set), so
-- that of several concurrent retries exactly one stores them.
-- KEYS[1]  session events hash (see ingest.lua)
-- KEYS[2]  session state hash (see ingest.lua)
-- ARGV[1]  new request id
-- ARGV[2..] triples: the event's field (Z85 of its id), its id as lowercase text (the field of
--          decisions taken until 5 December, as the client sent it: lowercase, or uppercase as
--          Swift's UUID writes it), the record the caller saw
-- Returns  one integer per triple: 1 when the event now belongs to the new request, 0 when
--          another request holds it, 2 when no record of it is kept any more but the session's
--          state is (its events hash expired after the session sat idle: retries of it are
--          looked up in ClickHouse), 3 when neither is kept (expired with the session's token,
--          or lost).
-- A record is compared with its outcome as a letter: one written until 5 December holds the
-- word, and a caller that rebuilds a record (ingest/repair.ts) writes the letter.
local LETTERS = { counted = 'c', stored = 's', excluded = 'x', rejected = 'r' }
local function same(a, b)
  if a == b then return true end
  local ra, oa, rest_a = string.match(a, '^([^|]*)|([^|]*)|(.*)$')
  local rb, ob, rest_b = string.match(b, '^([^|]*)|([^|]*)|(.*)$')
  return ra ~= nil and rb ~= nil and ra == rb and rest_a == rest_b and (LETTERS[oa] or oa) == (LETTERS[ob] or ob)
end

local out = {}
local idle = nil
for i = 2, #ARGV, 3 do
  local field, text, seen = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local record = redis.call('HGET', KEYS[1], field)
  if not record then
    for _, legacy in ipairs({ text, string.upper(text) }) do
      record = redis.call('HGET', KEYS[1], legacy)
      if record then field = legacy break end
    end
  end
  if not record then
    if idle == nil then idle = redis.call('HEXISTS', KEYS[2], 'seen') == 1 end
    out[#out + 1] = idle and 2 or 3
  elseif same(record, seen) then
    local rest = string.match(record, '^[^|]*|(.*)$')
    redis.call('HSET', KEYS[1], field, ARGV[1] .. '|' .. rest)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
