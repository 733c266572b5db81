-- Record a worker heartbeat. KEYS[1] workers hash. ARGV: field, JSON object, ttl ms.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local json = ARGV[2]
json = string.sub(json, 1, -2) .. ',"beat":' .. string.format('%d', now) ..
       ',"expires":' .. string.format('%d', now + tonumber(ARGV[3])) .. '}'
redis.call('HSET', KEYS[1], ARGV[1], json)
return now
