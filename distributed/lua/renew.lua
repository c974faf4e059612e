-- Keep the lease of a task in hand alive: reset its idle time in the pending list.
-- KEYS[1] task  KEYS[2] stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] msg id  ARGV[4] attempt  ARGV[5] owner
-- Returns 1 if renewed, 0 if the task is no longer ours (reclaimed, finished).
if not owns(KEYS[1], ARGV[4], ARGV[5]) then return 0 end
local claimed = redis.call('XCLAIM', KEYS[2], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
if #claimed == 0 then return 0 end
return 1
