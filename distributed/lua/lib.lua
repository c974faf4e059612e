-- Shared helpers, prepended to every script by distributed/scripts.py.

-- Add delta to a counter of the {p}:stats hash.
local function stat(stats, field, delta)
  redis.call('HINCRBY', stats, field, delta)
end

-- After a task of the job reached a terminal state: when every task is terminal, stamp
-- finished_at and start the job's retention clock.
local function job_settle(job, job_tasks, now, ttl)
  local t = redis.call('HMGET', job, 'total', 'completed', 'dead', 'cancelled')
  local total = tonumber(t[1] or '0')
  local done = tonumber(t[2] or '0') + tonumber(t[3] or '0') + tonumber(t[4] or '0')
  if total > 0 and done >= total then
    redis.call('HSET', job, 'finished_at', now)
    redis.call('EXPIRE', job, ttl)
    redis.call('EXPIRE', job_tasks, ttl)
  end
end

-- End a delivery: remove it from the consumer group's pending list and from the stream.
local function end_delivery(stream, group, msg)
  redis.call('XACK', stream, group, msg)
  redis.call('XDEL', stream, msg)
end

-- Is the caller still the owner of this delivery? (fencing token = attempt + owner)
local function owns(task, attempt, owner)
  local cur = redis.call('HMGET', task, 'state', 'attempts', 'owner')
  return cur[1] == 'running' and cur[2] == attempt and cur[3] == owner
end
