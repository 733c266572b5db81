-- Enqueue one message sent without identifier, serial group or delay: the lean path of
-- send.lua, with only the keys it writes. KEYS: 1 msgs, 2 seq, 3 the ready key of its
-- priority. ARGV: 1 driver kind, 2 id ('' = generate; the set driver passes its content
-- hash), 3 body (JSON object). Returns the id.
if redis.replicate_commands then redis.replicate_commands() end
local kind, id, body = ARGV[1], ARGV[2], ARGV[3]
if kind == 'set' and redis.call('HEXISTS', KEYS[1], id) == 1 then return id end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local seq = redis.call('INCR', KEYS[2])
if id == '' then id = now .. '-' .. seq end
body = string.sub(body, 1, -2) .. ',"enqueued_at":' .. now .. '}'
if kind == 'stream' then
  redis.call('XADD', KEYS[3], '*', 'i', id, 'm', body)
  return id
end
redis.call('HSET', KEYS[1], id, body)
if kind == 'list' then
  redis.call('RPUSH', KEYS[3], id)
elseif kind == 'sorted-set' then
  redis.call('ZADD', KEYS[3], seq, id)
else
  redis.call('SADD', KEYS[3], id)
end
return id
