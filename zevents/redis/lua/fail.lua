-- Move a leased message to the failed store. ARGV: id, token, record (JSON object),
-- identifier, serial group. The body stays in msgs for retry_failed. Returns 1, or 0.
local id, token = ARGV[A], ARGV[A + 1]
if redis.call('HGET', K_LEASES, id) ~= token then return 0 end
local now = now_ms()
redis.call('HDEL', K_LEASES, id)
redis.call('ZREM', K_PROC, id)
redis.call('HDEL', K_ATTEMPTS, id)
redis.call('HDEL', K_STATUS, id)
redis.call('HSET', K_FAILED, id, splice(ARGV[A + 2], 'failed_at', fmt(now)))
finish(id, ARGV[A + 3], ARGV[A + 4], now)
return 1
