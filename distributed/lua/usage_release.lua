-- Give back bytes of a tenant's storage usage (an upload or a job's outputs deleted or
-- expired), never below 0: bytes never counted (written before usage was counted) cannot
-- take the figure negative. A tenant at 0 is removed from the hash.
-- KEYS[1] usage hash
-- ARGV[1] tenant  ARGV[2] bytes (>= 0)
-- Returns the tenant's bytes used after.
local used = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local take = math.min(used, math.max(tonumber(ARGV[2]), 0))
if used - take <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return '0'
end
return string.format('%d', redis.call('HINCRBY', KEYS[1], ARGV[1], string.format('%d', -take)))
