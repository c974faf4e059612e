-- Begin deliveries (new or reclaimed): bump the attempt (the fencing token), record the owner.
-- KEYS[1] stats  KEYS[2] dead-letter zset  KEYS[3] tenants' open tasks (hash)
-- KEYS[4] callback outbox (zset)  KEYS[5..] per delivery: task hash, stream, job hash, job tasks list
-- ARGV[1] now ms  ARGV[2] owner token  ARGV[3] worker id  ARGV[4] group
-- ARGV[5] max attempts  ARGV[6] retention s  ARGV[7..] per delivery: msg id, task id
-- Returns per delivery {'run', attempt, payload, priority} | {'skip', 0, '', ''}
--   | {'dead', attempt, '', ''}
local stats, dead, topen, outbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, owner, worker, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max_attempts, ttl = tonumber(ARGV[5]), ARGV[6]
local out = {}
local n = (#KEYS - 4) / 4
for i = 1, n do
  local task, stream = KEYS[4 * i + 1], KEYS[4 * i + 2]
  local job, job_tasks = KEYS[4 * i + 3], KEYS[4 * i + 4]
  local msg, task_id = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  local cur = redis.call('HMGET', task, 'state', 'msg_id', 'priority', 'payload')
  local state = cur[1]
  -- A pending task gets its stream entry from fetch.lua (no msg_id yet); a running one is
  -- reclaimed under the entry it runs on.
  local live = (state == 'pending' and (not cur[2] or cur[2] == '' or cur[2] == msg))
    or (state == 'running' and cur[2] == msg)
  if not live then
    -- Stale delivery (task finished, cancelled, expired, or re-queued under a new entry).
    end_delivery(stream, group, msg)
    out[i] = {'skip', 0, '', ''}
  else
    local attempt = redis.call('HINCRBY', task, 'attempts', 1)
    if state == 'pending' then
      stat(stats, 'pending:' .. cur[3], -1)
      stat(stats, 'running', 1)
      redis.call('HSETNX', job, 'started_at', now)
    else
      stat(stats, 'reclaimed', 1)
    end
    if attempt > max_attempts then
      -- Delivered too often without an outcome: its workers keep dying on it.
      end_delivery(stream, group, msg)
      redis.call('HSET', task, 'state', 'dead', 'finished_at', now, 'error',
        cjson.encode({kind = 'lease_expired', message = 'worker lost the task ' ..
        (attempt - 1) .. ' times (lease expired)'}))
      redis.call('HDEL', task, 'owner')
      redis.call('ZADD', dead, now, task_id)
      stat(stats, 'running', -1)
      stat(stats, 'dead', 1)
      tenant_open(topen, tenant_of(task), -1)
      redis.call('HINCRBY', job, 'dead', 1)
      job_settle(job, job_tasks, now, ttl, outbox)
      out[i] = {'dead', attempt, '', ''}
    else
      redis.call('HSET', task, 'state', 'running', 'owner', owner, 'worker', worker,
        'started_at', now, 'msg_id', msg)
      out[i] = {'run', attempt, cur[4], cur[3]}
    end
  end
end
return out
