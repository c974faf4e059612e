-- Submit a job: all of its tasks or none. The tasks wait in the tenant's list of their
-- priority (fetch.lua moves them into the stream, round-robin across tenants).
-- KEYS[1] stats  KEYS[2] job  KEYS[3] job tasks list  KEYS[4] tenant's list of the priority
-- KEYS[5] idempotency key  KEYS[6] jobs index (zset job id -> created ms)
-- KEYS[7] tenants' open tasks (hash)  KEYS[8] ring of the priority  KEYS[9] doorbell stream
-- KEYS[10] the tenant's jobs index  KEYS[11..] task hashes, one per task, in image order
-- ARGV[1] now ms  ARGV[2] cap on open tasks  ARGV[3] use idempotency key ('1'/'0')
-- ARGV[4] idempotency TTL s  ARGV[5] job id  ARGV[6] priority  ARGV[7] job fields (JSON object)
-- ARGV[8] request fingerprint (stored with the idempotency key)
-- ARGV[9] tenant  ARGV[10] cap on the tenant's open tasks
-- ARGV[11..] per task: task id, payload JSON, image id ('' for none)
-- Returns {'ok', job id} | {'dup', first job id} | {'reused', first job id} | {'full', open tasks}
--   | {'tenant_full', the tenant's open tasks}
-- 'reused': the key was first used with another fingerprint (a different request).
local stats, job, job_tasks, list, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local jobs_index, topen, ring, doorbell = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local tenant_index = KEYS[10]
local now, cap, prio, job_id = ARGV[1], tonumber(ARGV[2]), ARGV[6], ARGV[5]
local tenant, tenant_cap = ARGV[9], tonumber(ARGV[10])

if ARGV[3] == '1' then
  local first = redis.call('GET', idem)
  if first then
    -- "<job id> <fingerprint>"; keys written before fingerprints hold the job id alone.
    local sep = string.find(first, ' ', 1, true)
    if not sep then return {'dup', first} end
    local first_job, stored = string.sub(first, 1, sep - 1), string.sub(first, sep + 1)
    if stored ~= '' and ARGV[8] ~= '' and stored ~= ARGV[8] then
      return {'reused', first_job}
    end
    return {'dup', first_job}
  end
end

local function num(f) return tonumber(redis.call('HGET', stats, f) or '0') end
local open = num('pending:high') + num('pending:normal') + num('pending:low')
  + num('running') + num('delayed')
local n = #KEYS - 10
if open + n > cap then return {'full', tostring(open)} end
local mine = tonumber(redis.call('HGET', topen, tenant) or '0')
if mine + n > tenant_cap then return {'tenant_full', tostring(mine)} end

local fields = cjson.decode(ARGV[7])
local flat = {}
for k, v in pairs(fields) do
  table.insert(flat, k)
  table.insert(flat, tostring(v))
end
redis.call('HSET', job, 'id', job_id, 'total', n, 'completed', 0, 'dead', 0, 'cancelled', 0,
  'created_at', now, 'priority', prio, 'tenant', tenant, unpack(flat))

local ids = {}
for i = 1, n do
  local task_id, payload, image = ARGV[8 + 3 * i], ARGV[9 + 3 * i], ARGV[10 + 3 * i]
  redis.call('HSET', KEYS[10 + i], 'id', task_id, 'job_id', job_id, 'index', i - 1,
    'priority', prio, 'payload', payload, 'state', 'pending', 'attempts', 0,
    'enqueued_at', now, 'tenant', tenant, 'image', image)
  ids[i] = task_id
end
-- In chunks: unpack() of a very long table overflows Lua's stack.
for i = 1, n, 1000 do
  local last = math.min(i + 999, n)
  redis.call('RPUSH', job_tasks, unpack(ids, i, last))
  if redis.call('RPUSH', list, unpack(ids, i, last)) == last - i + 1 then
    redis.call('RPUSH', ring, tenant)
  end
end
redis.call('ZADD', jobs_index, now, job_id)
redis.call('ZADD', tenant_index, now, job_id)
stat(stats, 'accepted', n)
stat(stats, 'pending:' .. prio, n)
tenant_open(topen, tenant, n)
bell(doorbell)
if ARGV[3] == '1' then redis.call('SET', idem, job_id .. ' ' .. ARGV[8], 'EX', ARGV[4]) end
return {'ok', job_id}
