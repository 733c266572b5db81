-- Put a leased message back, due after ARGV[A+2] ms. ARGV[A+3] = '0' does not count the
-- attempt (WaitingError). ARGV: id, token, delay ms, count. Returns 1, or 0 if fenced.
local id, token = ARGV[A], ARGV[A + 1]
if redis.call('HGET', K_LEASES, id) ~= token then return 0 end
local now = now_ms()
redis.call('HDEL', K_LEASES, id)
redis.call('ZREM', K_PROC, id)
if ARGV[A + 3] == '0' then redis.call('HINCRBY', K_ATTEMPTS, id, -1) end
redis.call('ZADD', K_DELAYED, now + tonumber(ARGV[A + 2]), id)
return 1
