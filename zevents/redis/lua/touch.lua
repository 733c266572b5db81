-- Renew leases for ARGV[A] ms. ARGV[A+1..]: pairs id, token. Returns the ids not ours.
local deadline = now_ms() + tonumber(ARGV[A])
local lost = {}
for i = A + 1, #ARGV, 2 do
  if redis.call('HGET', K_LEASES, ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', K_PROC, 'XX', deadline, ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
