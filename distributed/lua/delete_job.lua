-- Delete a finished job and every record of it (its owner asked: DELETE /api/jobs/<id>/).
-- KEYS[1] job hash  KEYS[2] job tasks list  KEYS[3] jobs index  KEYS[4] the tenant's index
-- KEYS[5] dead-letter zset  KEYS[6] stats  KEYS[7] callback outbox (zset)  KEYS[8..] task hashes
-- ARGV[1] job id  ARGV[2..] task ids, in the order of KEYS[8..]
-- Returns 'ok' | 'missing' | 'open' (tasks still pending, running or delayed: cancel first).
-- A task still dead-lettered is discarded first (dead -> cancelled in the counters), so the
-- states of {p}:stats still add up to `accepted`.
local job = KEYS[1]
local t = redis.call('HMGET', job, 'total', 'completed', 'dead', 'cancelled')
if not t[1] then return 'missing' end
local total = tonumber(t[1])
local done = tonumber(t[2] or '0') + tonumber(t[3] or '0') + tonumber(t[4] or '0')
if done < total then return 'open' end
for i = 8, #KEYS do
  if redis.call('ZREM', KEYS[5], ARGV[i - 6]) == 1 then
    stat(KEYS[6], 'dead', -1)
    stat(KEYS[6], 'cancelled', 1)
  end
  redis.call('DEL', KEYS[i])
end
redis.call('DEL', job, KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])  -- a callback not yet delivered goes with its job
return 'ok'
