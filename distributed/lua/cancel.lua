-- Cancel the tasks of a job that have not started: delayed ones leave the retry set; pending
-- ones stay listed in their tenant's list until fetch.lua drops them (or, already moved into
-- the stream, until start.lua does), so cancelling costs O(tasks of the job) whatever the
-- backlog.
-- Running tasks finish (their outcome is recorded as usual).
-- KEYS[1] stats  KEYS[2] delayed zset  KEYS[3] job  KEYS[4] job tasks list
-- KEYS[5] tenants' open tasks (hash)  KEYS[6] callback outbox (zset)  KEYS[7..] task hashes
-- ARGV[1] now ms  ARGV[2] retention s  ARGV[3..] task ids (parallel to KEYS[7..])
-- Returns the number of tasks cancelled.
local stats, delayed, job, job_tasks = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, ttl = ARGV[1], ARGV[2]
local cancelled = 0
for i = 7, #KEYS do
  local task, task_id = KEYS[i], ARGV[i - 4]
  local cur = redis.call('HMGET', task, 'state', 'priority')
  local state = cur[1]
  local done = false
  if state == 'pending' then
    stat(stats, 'pending:' .. cur[2], -1)
    done = true
  elseif state == 'delayed' then
    redis.call('ZREM', delayed, task_id)
    stat(stats, 'delayed', -1)
    done = true
  end
  if done then
    redis.call('HSET', task, 'state', 'cancelled', 'finished_at', now)
    tenant_open(KEYS[5], tenant_of(task), -1)
    shrink(task)
    redis.call('EXPIRE', task, ttl)
    stat(stats, 'cancelled', 1)
    redis.call('HINCRBY', job, 'cancelled', 1)
    cancelled = cancelled + 1
  end
end
job_settle(job, job_tasks, now, ttl, KEYS[6])
return cancelled
