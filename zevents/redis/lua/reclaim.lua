-- Return messages whose lease expired (their worker died or hung) to ready, first in
-- line; past ARGV[A] attempts, to the failed store; ARGV[A+1] of them at most.
-- Returns {requeued, failed}.
local now = now_ms()
local max_attempts = tonumber(ARGV[A])
local expired = redis.call('ZRANGEBYSCORE', K_PROC, '-inf', now, 'LIMIT', 0, ARGV[A + 1])
local requeued, failed = 0, 0
local heads = {}
for _, id in ipairs(expired) do
  local att = tonumber(redis.call('HGET', K_ATTEMPTS, id) or '0')
  local msg = decode(redis.call('HGET', K_MSGS, id))
  local key = msg and PRIO_KEY[prio_of(msg)]
  redis.call('HDEL', K_LEASES, id)
  redis.call('ZREM', K_PROC, id)
  if key and att < max_attempts then
    heads[#heads + 1] = {key, id, tonumber(string.match(id, '^%d+%-(%d+)$') or '') or math.huge}
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
-- Back to the head in enqueue order: push the newest first (ids are <ms>-<seq>).
table.sort(heads, function(a, b) return a[3] > b[3] end)
for _, h in ipairs(heads) do push_ready(h[1], h[2], true) end
return {requeued, failed}
