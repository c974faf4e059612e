-- Hand back a task that was taken but not worked on (shutdown with prefetched tasks):
-- it goes back to its queue as a new entry and the attempt is not counted.
-- KEYS[1] task  KEYS[2] old stream  KEYS[3] queue stream of its priority  KEYS[4] stats
-- ARGV[1] group  ARGV[2] msg id  ARGV[3] attempt  ARGV[4] owner
-- Returns 1 if released, 0 if no longer ours.
local task, stats = KEYS[1], KEYS[4]
if not owns(task, ARGV[3], ARGV[4]) then return 0 end
end_delivery(KEYS[2], ARGV[1], ARGV[2])
local msg = redis.call('XADD', KEYS[3], '*', 'task', redis.call('HGET', task, 'id'))
redis.call('HINCRBY', task, 'attempts', -1)
redis.call('HSET', task, 'state', 'pending', 'msg_id', msg)
redis.call('HDEL', task, 'owner')
stat(stats, 'running', -1)
stat(stats, 'pending:' .. redis.call('HGET', task, 'priority'), 1)
return 1
