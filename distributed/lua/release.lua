-- Hand back a task that was taken but not worked on (shutdown with prefetched tasks):
-- it goes back to the front of its tenant's list and the attempt is not counted.
-- KEYS[1] task  KEYS[2] old stream  KEYS[3] doorbell stream  KEYS[4] stats
-- ARGV[1] group  ARGV[2] msg id  ARGV[3] attempt  ARGV[4] owner  ARGV[5] tenant base
-- Returns 1 if released, 0 if no longer ours.
local task, stats = KEYS[1], KEYS[4]
if not owns(task, ARGV[3], ARGV[4]) then return 0 end
end_delivery(KEYS[2], ARGV[1], ARGV[2])
local prio = redis.call('HGET', task, 'priority')
tq_push(ARGV[5], prio, tenant_of(task), redis.call('HGET', task, 'id'), true)
bell(KEYS[3])
redis.call('HINCRBY', task, 'attempts', -1)
redis.call('HSET', task, 'state', 'pending')
redis.call('HDEL', task, 'owner', 'msg_id')
stat(stats, 'running', -1)
stat(stats, 'pending:' .. prio, 1)
return 1
