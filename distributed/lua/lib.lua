-- Shared helpers, prepended to every script by distributed/scripts.py.

-- Add delta to a counter of the {p}:stats hash.
local function stat(stats, field, delta)
  redis.call('HINCRBY', stats, field, delta)
end

-- After a task of the job reached a terminal state: when every task is terminal, stamp
-- finished_at and start the job's retention clock; a job with a callback_url goes into the
-- callback outbox (due now), in the same script, so no finished job misses its callback.
-- A job that settles again (a dead letter of it re-queued, then ended) is due again.
local function job_settle(job, job_tasks, now, ttl, outbox)
  local t = redis.call('HMGET', job, 'total', 'completed', 'dead', 'cancelled', 'id',
    'callback_url')
  local total = tonumber(t[1] or '0')
  local done = tonumber(t[2] or '0') + tonumber(t[3] or '0') + tonumber(t[4] or '0')
  if total > 0 and done >= total then
    redis.call('HSET', job, 'finished_at', now)
    redis.call('EXPIRE', job, ttl)
    redis.call('EXPIRE', job_tasks, ttl)
    if t[6] and t[6] ~= '' and t[5] then
      redis.call('ZADD', outbox, now, t[5])
      redis.call('HSET', job, 'callback_state', 'pending', 'callback_tries', 0,
        'callback_next_at', now)
    end
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

-- Fair share: tasks wait in per-tenant lists, one list per tenant and priority, and a ring
-- (a LIST of tenant names) per priority holds the tenants whose list is not empty, each once.
-- The list and ring names are built here from the base passed in ARGV (keys.py
-- Keys.tenant_base): the tenant of a task is only known inside the script.
local function tq_ring(base, prio) return base .. prio end
local function tq_list(base, prio, tenant) return base .. prio .. ':' .. tenant end

-- Queue a task id for its tenant (at the back, or at the front when handed back unworked).
local function tq_push(base, prio, tenant, task_id, front)
  local n
  if front then
    n = redis.call('LPUSH', tq_list(base, prio, tenant), task_id)
  else
    n = redis.call('RPUSH', tq_list(base, prio, tenant), task_id)
  end
  if n == 1 then redis.call('RPUSH', tq_ring(base, prio), tenant) end
end

-- Ring the doorbell stream: a worker blocked on it wakes up and fetches.
local function bell(key)
  redis.call('XADD', key, 'MAXLEN', '1', '*', 'n', '1')
end

-- The tenant of a task hash (tasks written before tenants belong to 'anonymous').
local function tenant_of(task)
  return redis.call('HGET', task, 'tenant') or 'anonymous'
end

-- Move a tenant's count of open (pending, running, delayed) tasks.
local function tenant_open(key, tenant, delta)
  if redis.call('HINCRBY', key, tenant, delta) <= 0 then redis.call('HDEL', key, tenant) end
end

-- A finished task keeps what the job view reads; the payload (the bulk) and the delivery
-- bookkeeping go. Dead tasks keep their payload: a dead letter can be re-queued.
local function shrink(task)
  redis.call('HDEL', task, 'payload', 'msg_id', 'owner', 'retry_at')
end
