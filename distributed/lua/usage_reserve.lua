-- Add bytes to a tenant's storage usage, checked against its quota in the same step, so
-- concurrent uploads from any number of API processes never pass it together. With quota 0
-- the bytes are always added (a worker counting the outputs it wrote: never refused).
-- KEYS[1] usage hash
-- ARGV[1] tenant  ARGV[2] bytes (>= 0)  ARGV[3] quota in bytes (0: none)
-- Returns {1, bytes used after} when added, {0, bytes used now} when the quota would be passed
-- (nothing changed).
local used = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local bytes, quota = tonumber(ARGV[2]), tonumber(ARGV[3])
if quota > 0 and used + bytes > quota then return {0, string.format('%d', used)} end
if bytes <= 0 then return {1, string.format('%d', used)} end
return {1, string.format('%d', redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]))}
