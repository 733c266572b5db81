-- Return messages whose lease expired (their worker died or hung) to ready, first in
-- line; past ARGV[A] attempts, to the failed store. Returns {requeued, failed}.
local now = now_ms()
local max_attempts = tonumber(ARGV[A])
local expired = redis.call('ZRANGEBYSCORE', K_PROC, '-inf', now, 'LIMIT', 0, 500)
local requeued, failed = 0, 0
for _, id in ipairs(expired) do
  local att = tonumber(redis.call('HGET', K_ATTEMPTS, id) or '0')
  local msg = decode(redis.call('HGET', K_MSGS, id))
  local key = msg and PRIO_KEY[str(msg.priority)]
  redis.call('HDEL', K_LEASES, id)
  redis.call('ZREM', K_PROC, id)
  if key and att < max_attempts then
    push_ready(key, id, true)
    requeued = requeued + 1
  else
    local why = 'LeaseExpired: the lease expired after attempt ' .. att ..
                ' (the worker died or hung)'
    if not key then why = 'DecodeError: the body is not a valid message' end
    redis.call('HDEL', K_ATTEMPTS, id)
    redis.call('HSET', K_FAILED, id, record(why, att, 'lease-expired', nil, now))
    if msg then finish(id, str(msg.identifier), str(msg.serial_group), now) end
    failed = failed + 1
  end
end
return {requeued, failed}
