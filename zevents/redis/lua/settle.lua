-- Settle a leased message that did not finish. ARGV: mode, id, lease token, then
--   mode 'retry': delay ms, count ('0' does not count the attempt: WaitingError);
--   mode 'fail': failure record (JSON object), identifier, serial group. The body stays
--   in msgs for retry_failed.
-- Returns 1, or 0 when the lease is no longer ours (fencing).
local mode, id, token = ARGV[A], ARGV[A + 1], ARGV[A + 2]
if redis.call('HGET', K_LEASES, id) ~= token then return 0 end
local now = now_ms()
redis.call('HDEL', K_LEASES, id)
redis.call('ZREM', K_PROC, id)
if mode == 'retry' then
  if ARGV[A + 4] == '0' then redis.call('HINCRBY', K_ATTEMPTS, id, -1) end
  redis.call('ZADD', K_DELAYED, now + tonumber(ARGV[A + 3]), id)
else
  redis.call('HDEL', K_ATTEMPTS, id)
  redis.call('HDEL', K_STATUS, id)
  redis.call('HSET', K_FAILED, id, splice(ARGV[A + 3], 'failed_at', fmt(now)))
  finish(id, ARGV[A + 4], ARGV[A + 5], now)
end
return 1
