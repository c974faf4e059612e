-- Record a task's result, fenced: only the current owner of the current attempt may.
-- KEYS[1] task  KEYS[2] stream  KEYS[3] job  KEYS[4] job tasks  KEYS[5] stats  KEYS[6] tput bucket
-- KEYS[7] tenants' open tasks (hash)  KEYS[8] callback outbox (zset)
-- ARGV[1] group  ARGV[2] msg id  ARGV[3] attempt  ARGV[4] owner  ARGV[5] now ms
-- ARGV[6] result JSON  ARGV[7] retention s  ARGV[8] tput bucket TTL s
-- Returns 1 if recorded, 0 if refused (a late completion from a former owner).
local task, stream, job, job_tasks, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, ttl = ARGV[5], ARGV[7]
if not owns(task, ARGV[3], ARGV[4]) then
  stat(stats, 'fenced', 1)
  return 0
end
end_delivery(stream, ARGV[1], ARGV[2])
redis.call('HSET', task, 'state', 'completed', 'result', ARGV[6], 'finished_at', now)
redis.call('HDEL', task, 'error', 'last_error')
-- Done for good: keep what the job view reads (the image id), not the whole message (the
-- pipeline is in the job hash). Tasks enqueued before the image id was stored get it here.
if not redis.call('HGET', task, 'image') then
  local ok, message = pcall(cjson.decode, redis.call('HGET', task, 'payload') or '')
  if ok and type(message) == 'table' and type(message['image_id']) == 'string' then
    redis.call('HSET', task, 'image', message['image_id'])
  end
end
shrink(task)
tenant_open(KEYS[7], tenant_of(task), -1)
redis.call('EXPIRE', task, ttl)
stat(stats, 'running', -1)
stat(stats, 'completed', 1)
redis.call('INCR', KEYS[6])
redis.call('EXPIRE', KEYS[6], ARGV[8])
redis.call('HINCRBY', job, 'completed', 1)
job_settle(job, job_tasks, now, ttl, KEYS[8])
return 1
