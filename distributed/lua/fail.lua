-- Record a failed attempt, fenced like complete.lua: retry later or dead-letter.
-- KEYS[1] task  KEYS[2] stream  KEYS[3] job  KEYS[4] job tasks  KEYS[5] stats
-- KEYS[6] delayed zset  KEYS[7] dead-letter zset  KEYS[8] tenants' open tasks (hash)
-- KEYS[9] callback outbox (zset)
-- ARGV[1] group  ARGV[2] msg id  ARGV[3] attempt  ARGV[4] owner  ARGV[5] now ms
-- ARGV[6] error JSON {kind, message}  ARGV[7] permanent '1'/'0'  ARGV[8] max attempts
-- ARGV[9] retry due at (ms)  ARGV[10] retention s
-- Returns 'retry' | 'dead' | 'fenced'
local task, stream, job, job_tasks, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = ARGV[5]
if not owns(task, ARGV[3], ARGV[4]) then
  stat(stats, 'fenced', 1)
  return 'fenced'
end
end_delivery(stream, ARGV[1], ARGV[2])
stat(stats, 'failed_attempts', 1)
stat(stats, 'running', -1)
redis.call('HDEL', task, 'owner')
if ARGV[7] ~= '1' and tonumber(ARGV[3]) < tonumber(ARGV[8]) then
  redis.call('HSET', task, 'state', 'delayed', 'error', ARGV[6], 'retry_at', ARGV[9])
  redis.call('ZADD', KEYS[6], ARGV[9], redis.call('HGET', task, 'id'))
  stat(stats, 'delayed', 1)
  stat(stats, 'retried', 1)
  return 'retry'
end
redis.call('HSET', task, 'state', 'dead', 'error', ARGV[6], 'finished_at', now)
redis.call('ZADD', KEYS[7], now, redis.call('HGET', task, 'id'))
stat(stats, 'dead', 1)
tenant_open(KEYS[8], tenant_of(task), -1)
redis.call('HINCRBY', job, 'dead', 1)
job_settle(job, job_tasks, now, ARGV[10], KEYS[9])
return 'dead'
