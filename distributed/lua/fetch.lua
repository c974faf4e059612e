-- Take up to COUNT new deliveries, trying the streams in the order given (highest first,
-- rotated by the caller now and then so low priority is not starved).
-- KEYS[1..] queue streams, in the order to try
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] count
-- Returns {{stream, msg id, task id}, ...}
local out = {}
local want = tonumber(ARGV[3])
for _, stream in ipairs(KEYS) do
  if #out >= want then break end
  local res = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want - #out,
    'STREAMS', stream, '>')
  if res then
    for _, entry in ipairs(res[1][2]) do
      table.insert(out, {stream, entry[1], entry[2][2]})
    end
  end
end
return out
