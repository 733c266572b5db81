-- Record what a queue is, the first time it is used: KEYS[1] its meta hash. ARGV: driver,
-- priority levels (comma-separated, highest first), default priority. A queue already
-- recorded keeps its record. Returns the record: {driver, levels, default, created_at}.
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  redis.call('HSET', KEYS[1], 'driver', ARGV[1], 'priorities', ARGV[2], 'default_priority',
             ARGV[3], 'created_at', now)
end
return redis.call('HMGET', KEYS[1], 'driver', 'priorities', 'default_priority', 'created_at')
