-- Re-queue or discard dead-lettered tasks.
-- KEYS[1] dead-letter zset  KEYS[2] stats  KEYS[3] doorbell stream
-- KEYS[4] tenants' open tasks (hash)  KEYS[5] callback outbox (zset)
-- KEYS[6..] per task: task hash, job hash, job tasks list
-- ARGV[1] 'requeue' | 'discard'  ARGV[2] now ms  ARGV[3] tenant base  ARGV[4] retention s
-- ARGV[5..] task ids
-- Returns the number of tasks changed.
local action, now, ttl = ARGV[1], ARGV[2], ARGV[4]
local changed = 0
local n = (#KEYS - 5) / 3
for i = 1, n do
  local task, job, job_tasks = KEYS[3 * i + 3], KEYS[3 * i + 4], KEYS[3 * i + 5]
  local task_id = ARGV[4 + i]
  if redis.call('ZREM', KEYS[1], task_id) == 1
      and redis.call('HGET', task, 'state') == 'dead' then
    stat(KEYS[2], 'dead', -1)
    redis.call('HINCRBY', job, 'dead', -1)
    if action == 'requeue' then
      local prio = redis.call('HGET', task, 'priority')
      local tenant = tenant_of(task)
      tq_push(ARGV[3], prio, tenant, task_id, false)
      bell(KEYS[3])
      tenant_open(KEYS[4], tenant, 1)
      redis.call('HSET', task, 'state', 'pending', 'attempts', 0,
        'last_error', redis.call('HGET', task, 'error') or '')
      redis.call('HDEL', task, 'error', 'finished_at', 'owner', 'msg_id')
      redis.call('PERSIST', task)
      redis.call('HDEL', job, 'finished_at')
      redis.call('PERSIST', job)
      redis.call('PERSIST', job_tasks)
      stat(KEYS[2], 'pending:' .. prio, 1)
      stat(KEYS[2], 'requeued', 1)
    else
      redis.call('HSET', task, 'state', 'cancelled', 'finished_at', now)
      shrink(task)
      redis.call('EXPIRE', task, ttl)
      redis.call('HINCRBY', job, 'cancelled', 1)
      stat(KEYS[2], 'cancelled', 1)
      job_settle(job, job_tasks, now, ttl, KEYS[5])
    end
    changed = changed + 1
  end
end
return changed
