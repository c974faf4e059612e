-- Ask a live worker to drain: finish the task in hand, stop fetching, deregister, exit 0.
-- The flag is the field `drain` (epoch ms of the request) of the worker's hash; the worker
-- reads it with each heartbeat. A new registration (a restart) replaces the hash, flag included.
-- KEYS[1] workers zset  KEYS[2] gone zset  KEYS[3] worker hash
-- ARGV[1] worker id  ARGV[2] heartbeat cutoff ms (older: dead)  ARGV[3] now ms
-- Returns 1 when the flag is set (or was already), 0 when the worker is gone (stopped, dead,
-- or silent past the timeout), -1 when no such worker is known.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSETNX', KEYS[3], 'drain', ARGV[3])
  return 1
end
if score or redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
return -1
