-- Move retries whose backoff has elapsed from the delayed set back to their queue.
-- KEYS[1] delayed zset  KEYS[2] stats  KEYS[3..5] queue streams for ARGV[1..3]
-- KEYS[6..] task hashes
-- ARGV[1..3] the priorities of KEYS[3..5]  ARGV[4..] task ids (parallel to KEYS[6..])
-- Returns the number promoted.
local streams = {[ARGV[1]] = KEYS[3], [ARGV[2]] = KEYS[4], [ARGV[3]] = KEYS[5]}
local moved = 0
for i = 6, #KEYS do
  local task_id = ARGV[i - 2]
  if redis.call('ZREM', KEYS[1], task_id) == 1 then
    local task = KEYS[i]
    local prio = redis.call('HGET', task, 'priority')
    if prio and redis.call('HGET', task, 'state') == 'delayed' then
      local msg = redis.call('XADD', streams[prio], '*', 'task', task_id)
      redis.call('HSET', task, 'state', 'pending', 'msg_id', msg)
      redis.call('HDEL', task, 'retry_at')
      stat(KEYS[2], 'delayed', -1)
      stat(KEYS[2], 'pending:' .. prio, 1)
      moved = moved + 1
    end
  end
end
return moved
