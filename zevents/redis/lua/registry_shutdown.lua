-- Ask every worker started before now to stop. KEYS[1] shutdown key. Returns now (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], string.format('%d', now))
return now
