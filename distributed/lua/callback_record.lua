-- Record one delivery attempt of a job-finished callback and decide the entry's fate.
-- KEYS[1] callback outbox (zset)  KEYS[2] job hash
-- ARGV[1] job id  ARGV[2] claim token (the score callback_claim.lua set)
-- ARGV[3] the attempt (JSON object)  ARGV[4] 'delivered' | 'retry' | 'failed'
-- ARGV[5] when the retry is due (epoch ms; for 'retry')  ARGV[6] attempts kept on the job
-- Returns 'recorded' | 'stale' (the attempt is kept, but the entry was claimed again or the
-- job settled again meanwhile: it stays queued as it is) | 'gone' (the job expired or was
-- deleted: its entry is dropped).
local outbox, job = KEYS[1], KEYS[2]
local job_id, token, outcome = ARGV[1], tonumber(ARGV[2]), ARGV[4]
if redis.call('EXISTS', job) == 0 then
  redis.call('ZREM', outbox, job_id)
  return 'gone'
end
local kept = tonumber(ARGV[6])
local ok, attempts = pcall(cjson.decode, redis.call('HGET', job, 'callback_attempts') or '[]')
if not ok or type(attempts) ~= 'table' then attempts = {} end
table.insert(attempts, cjson.decode(ARGV[3]))
while #attempts > kept do table.remove(attempts, 1) end
redis.call('HSET', job, 'callback_attempts', cjson.encode(attempts))
local score = redis.call('ZSCORE', outbox, job_id)
if not score or tonumber(score) ~= token then return 'stale' end
redis.call('HINCRBY', job, 'callback_tries', 1)
if outcome == 'retry' then
  redis.call('ZADD', outbox, ARGV[5], job_id)
  redis.call('HSET', job, 'callback_state', 'pending', 'callback_next_at', ARGV[5])
else
  redis.call('ZREM', outbox, job_id)
  redis.call('HSET', job, 'callback_state', outcome)
  redis.call('HDEL', job, 'callback_next_at')
end
return 'recorded'
