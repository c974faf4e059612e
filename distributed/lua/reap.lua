-- Declare a silent worker dead (once), keep its record for the status page, and drop its
-- consumer from the group when it holds no delivery (what it held is reclaimed by lease).
-- Its current task is cleared: a dead worker works on nothing (the task it held, if any, is
-- redelivered to another worker and shown there).
-- KEYS[1] workers zset  KEYS[2] gone zset  KEYS[3] stats  KEYS[4] worker hash
-- KEYS[5..] queue streams
-- ARGV[1] worker id  ARGV[2] heartbeat cutoff ms  ARGV[3] now ms  ARGV[4] retention s
-- ARGV[5] group
-- Returns 1 if reaped, 0 if it heartbeated meanwhile or is already gone.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], 'state', 'dead', 'current_task', '', 'gone_at', ARGV[3])
  redis.call('EXPIRE', KEYS[4], ARGV[4])
end
stat(KEYS[3], 'workers_reaped', 1)
for i = 5, #KEYS do
  -- pcall: the stream or group may not exist yet (nothing was ever submitted).
  local held = redis.pcall('XPENDING', KEYS[i], ARGV[5], '-', '+', 1, ARGV[1])
  if type(held) == 'table' and not held.err and #held == 0 then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[i], ARGV[5], ARGV[1])
  end
end
return 1
