-- Keep the lease of a task in hand alive: reset its idle time in the pending list.
-- KEYS[1] task  KEYS[2] stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] msg id  ARGV[4] attempt  ARGV[5] owner
-- Returns 'renewed'  still ours: the lease runs again from now
--         'gone'     the task is no longer running (finished, handed back, retried, expired)
--         'taken'    running under another owner or attempt: this delivery lost its lease
local cur = redis.call('HMGET', KEYS[1], 'state', 'attempts', 'owner')
if cur[1] ~= 'running' then return 'gone' end
if cur[2] ~= ARGV[4] or cur[3] ~= ARGV[5] then return 'taken' end
local claimed = redis.call('XCLAIM', KEYS[2], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
-- Ours, but the entry left the pending list: only a server that lost data does that.
if #claimed == 0 then return 'gone' end
return 'renewed'
