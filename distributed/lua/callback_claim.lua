-- Claim due job-finished callbacks: each due entry's score moves to now + lease, so no other
-- sender takes it while this one delivers; a sender that dies leaves it due again when the
-- lease is over. The new score is the claim's fencing token (callback_record.lua checks it).
-- KEYS[1] callback outbox (zset: job id -> due epoch ms)
-- ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] most entries to claim
-- Returns a flat list: job id, token, job id, token, ...
local outbox = KEYS[1]
local now, lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', outbox, '-inf', now, 'LIMIT', 0, limit)
local out = {}
local token = now + lease
for _, job_id in ipairs(due) do
  redis.call('ZADD', outbox, token, job_id)
  table.insert(out, job_id)
  table.insert(out, tostring(token))
end
return out
