-- Record a worker heartbeat and prune stale ones. KEYS[1] workers hash. ARGV: field, JSON object, ttl ms.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local json = ARGV[2]
json = string.sub(json, 1, -2) .. ',"beat":' .. string.format('%d', now) ..
       ',"expires":' .. string.format('%d', now + tonumber(ARGV[3])) .. '}'
redis.call('HSET', KEYS[1], ARGV[1], json)
-- Prune entries of workers that stopped beating (their own "expires" has passed).
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local expires = tonumber(string.match(all[i + 1], '"expires":(%d+)') or '0')
  if expires < now then redis.call('HDEL', KEYS[1], all[i]) end
end
return now
