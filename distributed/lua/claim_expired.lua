-- Lease reclaim: take over deliveries idle (un-renewed) for longer than the lease.
-- KEYS[1..] queue streams
-- ARGV[1] group  ARGV[2] claiming consumer  ARGV[3] lease ms  ARGV[4] count
-- Returns {{stream, msg id, task id}, ...}
local out = {}
for _, stream in ipairs(KEYS) do
  local res = redis.call('XAUTOCLAIM', stream, ARGV[1], ARGV[2], ARGV[3], '0-0',
    'COUNT', ARGV[4])
  for _, entry in ipairs(res[2]) do
    if entry[2] then
      table.insert(out, {stream, entry[1], entry[2][2]})
    else
      -- The entry was deleted from the stream but left pending: just drop it.
      redis.call('XACK', stream, ARGV[1], entry[1])
    end
  end
end
return out
