-- The submission time of the oldest pending task, read at the head of each tenant's list of
-- each priority: O(tenants with pending work, at most ARGV[3] per priority), never O(tasks).
-- The rings and the lists are named from the tenant base, like fetch.lua does (the tenants
-- are only known here); the task hashes from the task key base. Read only.
-- ARGV[1] tenant base (Keys.tenant_base)  ARGV[2] task key base (Keys.task(''))
-- ARGV[3] most tenants read per priority  ARGV[4..] the priorities
-- Returns the smallest `enqueued_at` (epoch ms) found, or false when nothing is pending.
local base, task_base, most = ARGV[1], ARGV[2], tonumber(ARGV[3])
local oldest = false
for i = 4, #ARGV do
  local prio = ARGV[i]
  for _, tenant in ipairs(redis.call('LRANGE', tq_ring(base, prio), 0, most - 1)) do
    local head = redis.call('LINDEX', tq_list(base, prio, tenant), 0)
    if head then
      local at = tonumber(redis.call('HGET', task_base .. head, 'enqueued_at') or '')
      if at and (not oldest or at < oldest) then oldest = at end
    end
  end
end
return oldest
