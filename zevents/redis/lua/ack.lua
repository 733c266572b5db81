-- Finish messages. ARGV[A..]: groups of 4: id, lease token, identifier, serial group.
-- A message whose lease is no longer ours is left alone (fencing). Returns those ids.
local done, lost = {}, {}
local finished = {}
local leases = {}
for i = A, #ARGV, 4 do leases[#leases + 1] = ARGV[i] end
if #leases == 0 then return lost end
local current = redis.call('HMGET', K_LEASES, unpack(leases))
local k = 0
for i = A, #ARGV, 4 do
  k = k + 1
  if current[k] == ARGV[i + 1] then
    done[#done + 1] = ARGV[i]
    if ARGV[i + 2] ~= '' or ARGV[i + 3] ~= '' then finished[#finished + 1] = i end
  else
    lost[#lost + 1] = ARGV[i]
  end
end
if #done > 0 then
  redis.call('HDEL', K_LEASES, unpack(done))
  redis.call('ZREM', K_PROC, unpack(done))
  redis.call('HDEL', K_MSGS, unpack(done))
  redis.call('HDEL', K_ATTEMPTS, unpack(done))
  redis.call('HDEL', K_STATUS, unpack(done))
end
if #finished > 0 then
  local now = now_ms()
  for _, i in ipairs(finished) do finish(ARGV[i], ARGV[i + 2], ARGV[i + 3], now) end
end
return lost
