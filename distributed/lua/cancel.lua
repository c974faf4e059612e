-- Cancel the tasks of a job that have not started: pending ones leave their stream, delayed
-- ones the retry set. Running tasks finish (their outcome is recorded as usual).
-- KEYS[1] stats  KEYS[2] delayed zset  KEYS[3] job  KEYS[4] job tasks list
-- KEYS[5..7] queue streams for ARGV[3..5]  KEYS[8..] task hashes
-- ARGV[1] now ms  ARGV[2] retention s  ARGV[3..5] priorities  ARGV[6..] task ids
-- Returns the number of tasks cancelled.
local stats, delayed, job, job_tasks = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, ttl = ARGV[1], ARGV[2]
local streams = {[ARGV[3]] = KEYS[5], [ARGV[4]] = KEYS[6], [ARGV[5]] = KEYS[7]}
local cancelled = 0
for i = 8, #KEYS do
  local task, task_id = KEYS[i], ARGV[i - 2]
  local cur = redis.call('HMGET', task, 'state', 'priority', 'msg_id')
  local state = cur[1]
  local done = false
  if state == 'pending' then
    -- An entry already fetched but not started is dropped by start.lua (state check).
    redis.call('XDEL', streams[cur[2]], cur[3])
    stat(stats, 'pending:' .. cur[2], -1)
    done = true
  elseif state == 'delayed' then
    redis.call('ZREM', delayed, task_id)
    stat(stats, 'delayed', -1)
    done = true
  end
  if done then
    redis.call('HSET', task, 'state', 'cancelled', 'finished_at', now)
    redis.call('EXPIRE', task, ttl)
    stat(stats, 'cancelled', 1)
    redis.call('HINCRBY', job, 'cancelled', 1)
    cancelled = cancelled + 1
  end
end
job_settle(job, job_tasks, now, ttl)
return cancelled
