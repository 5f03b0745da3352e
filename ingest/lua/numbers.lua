-- Numbers between Lua and Redis, shared by the scripts that include this file before their own
-- text. A Lua number passed to redis.call is formatted with '%.14g' (printf's floating-point
-- path: by callgrind a few thousand instructions each), so whole numbers go as int(n), '%d'
-- text; tonumber of a string converts it twice (lua_isnumber, then lua_tonumber), so numbers
-- are read with `x + 0`, one conversion, and num(x) reads a field that may be absent (HMGET
-- gives it as false): nil then, as tonumber gave.
local format = string.format
local function int(n) return format('%d', n) end
local function num(x) if x then return x + 0 end end
