-- Put failed messages back. ARGV[A..]: triples: store key, id, target group (stream).
-- Each goes back at the priority its stored body names (the queue's default when it
-- names none or one the queue does not have, or when the body is not a valid message:
-- the worker then fails it again, with the reason); attempts start again from zero; a
-- serial message joins the end of its group. Returns how many were put back.
local now = now_ms()
local n = 0
for i = A, #ARGV, 3 do
  local skey, id, group = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local body = redis.call('HGET', K_MSGS, skey)
  local msg = decode(body) or {}
  local prio = prio_of(msg)
  if not PRIO_KEY[prio] then prio = DEFAULT_PRIO end
  local key = PRIO_KEY[prio]
  if body and redis.call('HDEL', K_FAILED, skey) == 1 then
    local ident, serial = str(msg.identifier), str(msg.serial_group)
    redis.call('HDEL', K_ATTEMPTS, skey)
    if ident ~= '' then
      redis.call('HINCRBY', K_IDENTS, ident, 1)
      redis.call('HSET', K_IDENT_IDS, ident, id)
    end
    if KIND == 'stream' and serial ~= '' then
      -- the end of this consumer group's chain; skey is 'id|group', the chain member
      local chain = group .. '\1' .. serial
      local held = serial_head(chain) ~= nil
      redis.call('ZADD', K_SERIAL, 0,
                 serial_member(chain, redis.call('INCR', K_SEQ), prio, 0, skey))
      if not held then
        redis.call('HDEL', K_MSGS, skey)
        push_ready(key, id, false, body, '', group)
      end
    elseif KIND == 'stream' then
      redis.call('HDEL', K_MSGS, skey)
      push_ready(key, id, false, body, '', group)
    elseif serial ~= '' then
      local held = serial_head(serial) ~= nil
      redis.call('ZADD', K_SERIAL, 0, serial_member(serial, redis.call('INCR', K_SEQ), prio, 0, id))
      if not held then push_ready(key, id, false) end
    else
      push_ready(key, id, false)
    end
    n = n + 1
  end
end
return n
