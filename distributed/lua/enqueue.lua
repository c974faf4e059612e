-- Submit a job: all of its tasks or none.
-- KEYS[1] stats  KEYS[2] job  KEYS[3] job tasks list  KEYS[4] queue stream  KEYS[5] idempotency key
-- KEYS[6] jobs index (zset job id -> created ms)  KEYS[7] the tenant's jobs index
-- KEYS[8..] task hashes, one per task, in image order
-- ARGV[1] now ms  ARGV[2] cap on open tasks  ARGV[3] use idempotency key ('1'/'0')
-- ARGV[4] idempotency TTL s  ARGV[5] job id  ARGV[6] priority  ARGV[7] job fields (JSON object)
-- ARGV[8] request fingerprint (stored with the idempotency key)
-- ARGV[9..] per task: task id, payload JSON
-- Returns {'ok', job id} | {'dup', first job id} | {'reused', first job id} | {'full', open tasks}
-- 'reused': the key was first used with another fingerprint (a different request).
local stats, job, job_tasks, stream, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local jobs_index, tenant_index = KEYS[6], KEYS[7]
local now, cap, prio, job_id = ARGV[1], tonumber(ARGV[2]), ARGV[6], ARGV[5]

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
local n = #KEYS - 7
if open + n > cap then return {'full', tostring(open)} end

local fields = cjson.decode(ARGV[7])
local flat = {}
for k, v in pairs(fields) do
  table.insert(flat, k)
  table.insert(flat, tostring(v))
end
redis.call('HSET', job, 'id', job_id, 'total', n, 'completed', 0, 'dead', 0, 'cancelled', 0,
  'created_at', now, 'priority', prio, unpack(flat))

for i = 1, n do
  local task_id, payload = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  local msg = redis.call('XADD', stream, '*', 'task', task_id)
  redis.call('HSET', KEYS[7 + i], 'id', task_id, 'job_id', job_id, 'index', i - 1,
    'priority', prio, 'payload', payload, 'state', 'pending', 'attempts', 0,
    'enqueued_at', now, 'msg_id', msg)
  redis.call('RPUSH', job_tasks, task_id)
end
redis.call('ZADD', jobs_index, now, job_id)
redis.call('ZADD', tenant_index, now, job_id)
stat(stats, 'accepted', n)
stat(stats, 'pending:' .. prio, n)
if ARGV[3] == '1' then redis.call('SET', idem, job_id .. ' ' .. ARGV[8], 'EX', ARGV[4]) end
return {'ok', job_id}
