-- Takes the request from the session's token bucket, then decides every event of it,
-- atomically (numbers.lua and bucket.lua are included before this text). The session's keys are read once and
-- written once a call: its state hash holds its bucket too (until the evening of 5 December a key of its own,
-- `...:rl`, which expired seconds after its last use: an edge of before and one of since, side
-- by side during an upgrade, each keep a bucket of their own for a session they both take).
-- Each event id gets exactly one decision, recorded with the request that took it:
-- a retried id returns the recorded decision instead of a new one.
--
-- KEYS[1]  session events hash: event field (the id's 16 bytes in Z85, 20 characters: see
--          eventField in decide.ts) -> "<request id>|<outcome letter>|<reason>|<credited ms>";
--          kept while the session is active (ARGV[15+n] after its last batch): then it expires
--          whole, and ids the session may send again are looked up in ClickHouse (see below).
--          Decisions taken until 5 December are kept under the id's text, with the outcome's
--          word: while a hash may hold them (`legacy` below), an id not found is looked for so.
-- KEYS[2]  session state hash: last (ms), credited (ms), viewed (0/1), a:<ad id> (1),
--          seen (ms: the last call that recorded events), horizon (ms: the latest `seen` at
--          which the events hash was found expired; ids decided up to then may lack a record),
--          z ('1': the events hash was made since 5 December and holds no id as text),
--          t and at (the session's token bucket: tokens left, last refill ms; see bucket.lua)
-- KEYS[3]  live view counter of the video
-- KEYS[4]  the viewer's resume position on the video: "<event ms>:<position ms>" (expires)
-- KEYS[5]  viewer window key of the video (counted view within the dedup window)
-- KEYS[6]  IP window sorted set of the video (counted views from this IP)
-- KEYS[7..6+n] viewer window key of each ad listed in the token (same order as the ad ids)
-- ARGV[1]  request id         ARGV[2] now (ms)        ARGV[3] viewer id     ARGV[4] creator id
-- ARGV[5]  session start (ms) ARGV[6] duration (ms)   ARGV[7] window (ms)   ARGV[8] max counted views per IP
-- ARGV[9]  TTL of session keys (s)   ARGV[10] requests per second per token   ARGV[11] burst per token
-- ARGV[12] n = number of ads in the token                ARGV[13..12+n] ad ids
-- ARGV[13+n] the events: each a record of 59 characters, one after another, then for each event
--   with a pre-decided rejection reason "\30<its 1-based index>\31<the reason>", and before those
--   "\30*" when an id appears more than once in the batch. A record: at 1 the id's field (20), at 21
--   the type's letter (TYPES below), at 22 ts (ms, 16 digits), at 38 position (ms, 10), at 48
--   watched (ms, 10), at 58 for an ad_impression the 1-based index of its ad among the token's
--   ads (2; 0: not one of them). Numbers are zero-padded. One value for the whole batch keeps the
--   call cheap to encode at the edge; fixed offsets keep it cheap to read here (fields cut with
--   string.sub: by callgrind, cutting 30 events by a pattern with a capture per field took
--   600,000 instructions, 43 % of the call; looking for a separator after each record, and
--   keeping every id's decision in a table for repeats that most batches do not have, 6 % and 3 %).
-- ARGV[14+n] seconds the resume position is kept after it changes
-- ARGV[15+n] seconds the events hash is kept after the session's last batch (not past ARGV[9])
-- ARGV[16+n] ms added to `horizon`: an event decided at time t has ts <= t + this (the future
--            tolerance), so an event with a later ts cannot have been decided before the horizon
-- ARGV[17+n] '' for a first call; else the ids the edge looked up in ClickHouse after a
--            "cold" answer, each as "<field>\31<record or ''>", joined by byte 30: found ones are
--            recorded (HSETNX) as the decisions ClickHouse holds, the rest are new. Such a call
--            takes nothing from the token bucket (its first call did).
-- Returns {"rl", ms to wait} when the session's bucket is empty (nothing is touched);
-- {"cold", indexes}: 1-based indexes (comma-separated) of events without a record whose ts is
-- not after the horizon (+ ARGV[16+n]): the edge looks them up in raw_events and calls again
-- with ARGV[17+n] (nothing is decided meanwhile); else
-- {"ok", decisions}: one per event, in order, joined by byte 30: "n|<outcome letter>|<reason>|<credited>"
-- for a new decision, or "d|<record>" for an id already decided (earlier, or by an earlier
-- event of this same batch).

-- Whole numbers go to Redis as int(n), numbers are read with `x + 0` or num(x) (numbers.lua).
local req, now = ARGV[1], ARGV[2] + 0
local viewer, creator = ARGV[3], ARGV[4]
local session_start, duration = ARGV[5] + 0, ARGV[6] + 0
local window, max_per_ip, ttl = ARGV[7] + 0, ARGV[8] + 0, ARGV[9] + 0
local n_ads = ARGV[12] + 0
-- The events hash's lifetime from each batch (ARGV[15+n], not past ARGV[9]).
local events_ttl = int(math.min(ttl, ARGV[15 + n_ads] + 0))
local looked_up = ARGV[17 + n_ads]
local st = redis.call('HMGET', KEYS[2], 'last', 'credited', 'viewed', 'seen', 'horizon', 'z', 't', 'at')
-- The state's fields to write (`keep`), written in one HSET on the way out (`keep_state`).
local sw, n_sw = {}, 0
local function keep(field, value)
  n_sw = n_sw + 2
  sw[n_sw - 1], sw[n_sw] = field, value
end
local function keep_state()
  if n_sw > 0 then redis.call('HSET', KEYS[2], unpack(sw, 1, n_sw)) end
  -- ARGV[9] as sent: a number would be formatted back to text for Redis.
  redis.call('EXPIRE', KEYS[2], ARGV[9])
end
if looked_up == '' then
  local wait, tokens, at = refill(num(st[7]), num(st[8]), now, ARGV[10] + 0, ARGV[11] + 0, 1)
  if wait > 0 then return {'rl', wait} end
  keep('t', tokens)
  keep('at', int(at))
end
local last = num(st[1]) or session_start
local credited_total = num(st[2]) or 0
local viewed = st[3] == '1'
local horizon = num(st[5])
local fresh = st[6] == '1'
local exists = nil
if st[4] or not fresh then exists = redis.call('EXISTS', KEYS[1]) == 1 end
-- A hash made until 5 December may hold ids as text; one made since never does (`z`).
local legacy = not fresh and exists
-- Events were recorded before, and their records are gone: the session sat idle past the
-- events hash's lifetime. Whatever was decided up to then is in ClickHouse, not here.
if st[4] and not exists then
  local seen = st[4] + 0
  if horizon == nil or seen > horizon then
    horizon = seen
    keep('horizon', st[4])
  end
end
local state_changed = false
local resume_ts, resume_i = nil, nil
local self = viewer == creator
local out = {}

local function count_view()
  if viewed then return 'stored', 'repeat_play' end
  viewed = true
  state_changed = true
  if self then return 'excluded', 'self_view' end
  if redis.call('EXISTS', KEYS[5]) == 1 then return 'excluded', 'duplicate_viewer' end
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', int(now - window))
  if redis.call('ZCARD', KEYS[6]) >= max_per_ip then return 'excluded', 'duplicate_ip' end
  redis.call('SET', KEYS[5], '1', 'PX', ARGV[7])
  redis.call('ZADD', KEYS[6], ARGV[2], req .. ':' .. viewer)
  redis.call('PEXPIRE', KEYS[6], ARGV[7])
  redis.call('INCR', KEYS[3])
  return 'counted', ''
end

local function count_impression(ad_index)
  if ad_index < 1 or ad_index > n_ads then return 'rejected', 'ad_not_served' end
  if redis.call('HSETNX', KEYS[2], 'a:' .. ARGV[12 + ad_index], '1') == 0 then return 'excluded', 'duplicate_impression' end
  if self then return 'excluded', 'self_view' end
  local wkey = KEYS[6 + ad_index]
  if redis.call('EXISTS', wkey) == 1 then return 'excluded', 'duplicate_viewer' end
  redis.call('SET', wkey, '1', 'PX', ARGV[7])
  return 'counted', ''
end

local find, sub, byte = string.find, string.sub, string.byte
-- An event's type by its letter's byte (p, u, s, e, g, a): no string is made to read it.
local TYPES = { [112] = 'play', [117] = 'pause', [115] = 'seek', [101] = 'end', [103] = 'progress', [97] = 'ad_impression' }
-- Fields per event in parallel arrays (no table per event); the rest is cut from the record
-- (event i's starts at 59 * i - 58) where it is used.
local packed = ARGV[13 + n_ads]
local tail = find(packed, '\30', 1, true)
local n = ((tail or #packed + 1) - 1) / 59
local ids, typs, tss, pres = {}, {}, {}, {}
for i = 1, n do
  local at = 59 * i - 58
  ids[i], typs[i], tss[i] = sub(packed, at, at + 19), TYPES[byte(packed, at + 20)], sub(packed, at + 21, at + 36) + 0
end
-- Decisions this call makes, by id, for an id the batch holds again (only then).
local mine = nil
if tail then
  if byte(packed, tail + 1) == 42 then mine = {} end -- '*'
  for i, reason in string.gmatch(sub(packed, tail), '\30(%d+)\31([^\30]*)') do pres[i + 0] = reason end
end
local function position(i) return sub(packed, 59 * i - 21, 59 * i - 12) + 0 end
local function watched(i) return sub(packed, 59 * i - 11, 59 * i - 2) + 0 end
local function ad_index(i) return sub(packed, 59 * i - 1, 59 * i) + 0 end
-- What ClickHouse holds of the ids looked up: recorded as they were decided then.
local checked = {}
if looked_up ~= '' then
  for id, record in string.gmatch(looked_up, '([^\30\31]+)\31([^\30]*)') do
    checked[id] = true
    if record ~= '' then redis.call('HSETNX', KEYS[1], id, record) end
  end
  -- Expiring from now, whatever this call returns.
  redis.call('EXPIRE', KEYS[1], events_ttl)
end
-- The records of every id at once (and in `mine`, for a repeated id, what this call decided).
local recorded = n > 0 and redis.call('HMGET', KEYS[1], unpack(ids)) or {}
if legacy then
  -- Ids not found by field may have been decided until 5 December, under their text as the
  -- client sent it: lowercase, or uppercase as Swift's UUID writes it.
  local Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#'
  local digit = {}
  for k = 1, 85 do digit[string.byte(Z85, k)] = k - 1 end
  local missing, texts = {}, {}
  for i = 1, n do
    if not recorded[i] then
      local hex = ''
      for w = 0, 15, 5 do
        local value = 0
        for k = 1, 5 do value = value * 85 + digit[string.byte(ids[i], w + k)] end
        hex = hex .. string.format('%08x', value)
      end
      local text = sub(hex, 1, 8) .. '-' .. sub(hex, 9, 12) .. '-' .. sub(hex, 13, 16) .. '-' .. sub(hex, 17, 20) .. '-' .. sub(hex, 21, 32)
      missing[#missing + 1] = i
      texts[#texts + 1] = text
      texts[#texts + 1] = string.upper(text)
    end
  end
  if #missing > 0 then
    local found = redis.call('HMGET', KEYS[1], unpack(texts))
    for k, i in ipairs(missing) do recorded[i] = found[2 * k - 1] or found[2 * k] end
  end
end
if horizon then
  local cold, limit = {}, horizon + ARGV[16 + n_ads]
  for i = 1, n do
    if not recorded[i] and not checked[ids[i]] and tss[i] <= limit then cold[#cold + 1] = i end
  end
  if #cold > 0 then
    keep_state()
    return {'cold', table.concat(cold, ',')}
  end
end
local writes, n_writes, n_out = {}, 0, 0
local LETTERS = { counted = 'c', stored = 's', excluded = 'x', rejected = 'r' }
-- Decision texts are made once per (outcome, reason, credited) of the call, each as the
-- record kept ("<request id>|<text>") and the answer ("n|<text>"): most events of a batch
-- share one, and making a Lua string (hashed and interned) is what costs here.
local texts = {}
local function decision_text(outcome, reason, credited)
  local by_reason = texts[outcome]
  if not by_reason then by_reason = {} texts[outcome] = by_reason end
  local by_credit = by_reason[reason]
  if not by_credit then by_credit = {} by_reason[reason] = by_credit end
  local d = by_credit[credited]
  if not d then
    local text = LETTERS[outcome] .. '|' .. reason .. '|' .. int(credited)
    d = { req .. '|' .. text, 'n|' .. text }
    by_credit[credited] = d
  end
  return d
end

local last_o, last_r, last_c, last_d
for i = 1, n do
  local id, typ, ts = ids[i], typs[i], tss[i]
  local rec = recorded[i]
  if not rec and mine then rec = mine[id] end
  if rec then
    n_out = n_out + 1
    out[n_out] = 'd|' .. rec
  else
    local outcome, reason, credited = 'stored', '', 0
    local pre = pres[i]
    if pre then
      outcome, reason = 'rejected', pre
    elseif typ == 'play' then
      outcome, reason = count_view()
    elseif typ == 'ad_impression' then
      outcome, reason = count_impression(ad_index(i))
    elseif typ == 'progress' then
      -- Watch time: at most twice the wall-clock time since the previous accepted event
      -- plus a second, at most the video's duration, and over the whole session at most
      -- twice the server time since the session started plus a second.
      -- (Compared inline: a call of math.min or math.max costs as much as the rest.)
      local since = ts - last
      if since < 0 then since = 0 end
      credited = watched(i)
      if since * 2 + 1000 < credited then credited = since * 2 + 1000 end
      if duration < credited then credited = duration end
      local session_cap = (now - session_start) * 2 + 1000 - credited_total
      if session_cap < credited then credited = session_cap end
      if credited < 0 then credited = 0 end
      credited_total = credited_total + credited
      outcome = 'counted'
    end
    if outcome ~= 'rejected' then
      if ts > last then last = ts end
      state_changed = true
      if typ ~= 'ad_impression' and (resume_ts == nil or ts >= resume_ts) then
        resume_ts, resume_i = ts, i
      end
    end
    -- Most events of a batch get the decision of the event before: no call, no lookup.
    local d = last_d
    if outcome ~= last_o or reason ~= last_r or credited ~= last_c then
      d = decision_text(outcome, reason, credited)
      last_o, last_r, last_c, last_d = outcome, reason, credited, d
    end
    local record = d[1]
    if mine then mine[id] = record end
    writes[n_writes + 1], writes[n_writes + 2] = id, record
    n_writes = n_writes + 2
    n_out = n_out + 1
    out[n_out] = d[2]
  end
end

if n_writes > 0 then redis.call('HSET', KEYS[1], unpack(writes)) end
redis.call('EXPIRE', KEYS[1], events_ttl)
if state_changed then
  keep('last', int(last))
  keep('credited', int(credited_total))
  keep('viewed', viewed and '1' or '0')
end
if state_changed or n_writes > 0 then keep('seen', ARGV[2]) end
-- This call made the events hash: it holds no id as text, until it expires.
if not exists and not fresh and (n_writes > 0 or looked_up ~= '') then keep('z', '1') end
keep_state()
if resume_ts then
  local resume_pos = typs[resume_i] == 'end' and 0 or position(resume_i)
  local prev = redis.call('GET', KEYS[4])
  local prev_ts = prev and tonumber(string.match(prev, '^(%-?%d+):')) or nil
  if prev_ts == nil or resume_ts >= prev_ts then
    redis.call('SET', KEYS[4], int(resume_ts) .. ':' .. int(resume_pos), 'EX', ARGV[14 + n_ads])
  end
end
return {'ok', table.concat(out, '\30')}
