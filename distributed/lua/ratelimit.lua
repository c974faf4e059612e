-- One request against a rate limit, by GCRA (the generic cell rate algorithm; redis-cell's):
-- the key holds the limit's theoretical arrival time (TAT). A request is admitted when the TAT
-- is at most the burst tolerance ahead of now, and then moves it one emission interval on;
-- a refused request changes nothing. One key, one atomic step, and Redis's clock (TIME), so
-- the clocks of the API hosts do not matter. distributed/ratelimit.py ``gcra`` is the same
-- algorithm in Python (the per-process limiter) and the reference of its tests.
-- All times are integer microseconds of Redis's clock (below 2^53: exact in Lua's doubles).
-- KEYS[1] the limit's key ({p}:rl:{ident}, STRING: the TAT)
-- ARGV[1] emission interval (period / count, rounded up)  ARGV[2] burst tolerance
--         (burst * interval)
-- Returns {allowed (1 or 0), remaining (requests admitted right after this one if they came
--          at once), retry_after (0 when admitted: until the next one would be),
--          reset_after (until the TAT: the key's PX, after which it is as if new)}
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
  math.ceil((new_tat - now) / 1000))
return {1, math.floor((now + tolerance - new_tat) / interval) + 1, 0, new_tat - now}
