-- Take up to COUNT new deliveries, trying the priorities in the order given (highest first,
-- rotated by the caller now and then so low priority is not starved).
-- For each priority: first entries already in the stream and never delivered (tasks handed to
-- the stream before the fair-share scheduler, none otherwise), then as many tasks as still
-- wanted are moved from the tenants' lists into the stream, one task per tenant per turn of
-- the ring (round-robin), and read at once through the consumer group, so the pending-entries
-- list holds them as before (leases, reclaim and fencing are unchanged).
-- KEYS[1..n] queue streams, in the order to try  KEYS[n+1] doorbell stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] count  ARGV[4] tenant base (Keys.tenant_base)
-- ARGV[5] task key base (Keys.task(''))  ARGV[6..] the priorities of KEYS[1..n]
-- Listed tasks no longer pending (cancelled while listed, maybe expired since) are dropped
-- here, up to MAX_SKIPPED per call (the task hash is read, never written).
-- Returns {{{stream, msg id, task id}, ...}, doorbell id}: the doorbell's last entry id when
-- nothing was found (the caller blocks on the doorbell after it), else ''.
local group, consumer, want, base = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local task_base = ARGV[5]
local MAX_SKIPPED = 1000
local n = #KEYS - 1
local out = {}
local skipped = 0

local function read(stream, count)
  local res = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count,
    'STREAMS', stream, '>')
  if res then
    for _, entry in ipairs(res[1][2]) do
      table.insert(out, {stream, entry[1], entry[2][2]})
    end
  end
end

for i = 1, n do
  if #out >= want then break end
  local stream, prio = KEYS[i], ARGV[5 + i]
  read(stream, want - #out)
  local ring = tq_ring(base, prio)
  local moved, need = 0, want - #out
  while moved < need and skipped < MAX_SKIPPED do
    local tenant = redis.call('LPOP', ring)
    if not tenant then break end
    local list = tq_list(base, prio, tenant)
    local task_id = redis.call('LPOP', list)
    if redis.call('LLEN', list) > 0 then redis.call('RPUSH', ring, tenant) end
    if task_id then
      if redis.call('HGET', task_base .. task_id, 'state') == 'pending' then
        redis.call('XADD', stream, '*', 'task', task_id)
        moved = moved + 1
      else
        skipped = skipped + 1
      end
    end
  end
  if moved > 0 then read(stream, moved) end
end
if #out > 0 then return {out, ''} end
local last = redis.call('XREVRANGE', KEYS[n + 1], '+', '-', 'COUNT', 1)
return {out, last[1] and last[1][1] or '0-0'}
