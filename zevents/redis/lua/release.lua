-- Give back leased messages that were never started (attempt not counted), first in
-- line again at their priority. ARGV[A..]: pairs id, lease token. Returns the count.
local n = 0
for i = A, #ARGV, 2 do
  local id = ARGV[i]
  local msg = decode(redis.call('HGET', K_MSGS, id))
  local key = msg and PRIO_KEY[prio_of(msg)]
  if key and redis.call('HGET', K_LEASES, id) == ARGV[i + 1] then
    redis.call('HDEL', K_LEASES, id)
    redis.call('ZREM', K_PROC, id)
    redis.call('HINCRBY', K_ATTEMPTS, id, -1)
    push_ready(key, id, true)
    n = n + 1
  end
end
return n
