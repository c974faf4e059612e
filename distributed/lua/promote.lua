-- Move retries whose backoff has elapsed from the delayed set back to their tenant's list.
-- KEYS[1] delayed zset  KEYS[2] stats  KEYS[3] doorbell stream
-- KEYS[4..] task hashes
-- ARGV[1] tenant base  ARGV[2..] task ids (parallel to KEYS[4..])
-- Returns the number promoted.
local moved = 0
for i = 4, #KEYS do
  local task_id = ARGV[i - 2]
  if redis.call('ZREM', KEYS[1], task_id) == 1 then
    local task = KEYS[i]
    local prio = redis.call('HGET', task, 'priority')
    if prio and redis.call('HGET', task, 'state') == 'delayed' then
      tq_push(ARGV[1], prio, tenant_of(task), task_id, false)
      redis.call('HSET', task, 'state', 'pending')
      redis.call('HDEL', task, 'retry_at', 'msg_id')
      stat(KEYS[2], 'delayed', -1)
      stat(KEYS[2], 'pending:' .. prio, 1)
      moved = moved + 1
    end
  end
end
if moved > 0 then bell(KEYS[3]) end
return moved
