-- Append one sample of the cluster counters to the history, at most one per bucket whoever
-- calls (every worker and API process may: the first caller of a bucket writes it).
-- KEYS[1] history list  KEYS[2] history:last  KEYS[3] stats hash
-- ARGV[1] bucket (epoch s // bucket size)  ARGV[2] now ms  ARGV[3] samples kept
-- ARGV[4..] the stats fields to copy, in order
-- Returns 1 when a sample was written, 0 when this bucket already had one.
local last = redis.call('GET', KEYS[2])
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
local fields = {}
for i = 4, #ARGV do table.insert(fields, ARGV[i]) end
local values = redis.call('HMGET', KEYS[3], unpack(fields))
local sample = {ARGV[2]}
for i = 1, #values do table.insert(sample, tonumber(values[i] or '0') or 0) end
redis.call('LPUSH', KEYS[1], table.concat(sample, ','))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return 1
