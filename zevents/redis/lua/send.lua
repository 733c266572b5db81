-- Enqueue messages. ARGV[A..]: groups of 8 fields per message:
-- id ('' = generate), body (JSON object), priority, delay ms, execute_at ms ('' = none),
-- identifier, unique ('1'/''), serial group. Returns the ids. On the stream driver a
-- serial message gets one chain and one tagged entry per consumer group existing now.
local now = now_ms()
local ids = {}
local fanout = nil
for i = A, #ARGV, 8 do
  local id, body, prio, delay = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local at, ident, unique, serial = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local done = false
  if ident ~= '' and unique == '1' then
    local existing = redis.call('HGET', K_IDENT_IDS, ident)
    if existing and tonumber(redis.call('HGET', K_IDENTS, ident) or '0') > 0 then
      ids[#ids + 1] = existing
      done = true
    end
  end
  if not done and KIND == 'set' and redis.call('HEXISTS', K_MSGS, id) == 1 then
    ids[#ids + 1] = id
    done = true
  end
  if not done then
    local seq = redis.call('INCR', K_SEQ)
    if id == '' then id = fmt(now) .. '-' .. seq end
    body = splice(body, 'enqueued_at', fmt(now))
    local key = PRIO_KEY[prio]
    if not key then return redis.error_reply('ERR zevents: unknown priority ' .. prio) end
    local due = 0
    if at ~= '' then due = tonumber(at) elseif delay > 0 then due = now + delay end
    local groups = nil
    if KIND == 'stream' and (ident ~= '' or serial ~= '') then
      if not fanout then
        fanout = {}
        local ok, info = pcall(redis.call, 'XINFO', 'GROUPS', key)
        if ok then
          for _, g in ipairs(info) do
            for k = 1, #g, 2 do
              if g[k] == 'name' then fanout[#fanout + 1] = g[k + 1] end
            end
          end
        end
      end
      groups = fanout
    end
    if ident ~= '' then
      local n = 1
      if groups and #groups > 0 then n = #groups end
      redis.call('HINCRBY', K_IDENTS, ident, n)
      redis.call('HSET', K_IDENT_IDS, ident, id)
    end
    local held = false
    if KIND == 'stream' and serial ~= '' and #groups > 0 then
      -- One chain per consumer group: each group runs the serial group in order, and a
      -- group's entry is tagged for it alone.
      for _, cg in ipairs(groups) do
        local chain = cg .. '\1' .. serial
        local member = id .. '|' .. cg
        local waits = serial_head(chain) ~= nil
        redis.call('ZADD', K_SERIAL, 0, serial_member(chain, seq, prio, due, member))
        if waits or due > now then
          redis.call('HSET', K_MSGS, member, body)
          if not waits then redis.call('ZADD', K_DELAYED, due, member) end
        else
          push_ready(key, id, false, body, '', cg)
        end
      end
    elseif serial ~= '' and KIND ~= 'stream' then
      held = serial_head(serial) ~= nil
      redis.call('ZADD', K_SERIAL, 0, serial_member(serial, seq, prio, due, id))
    end
    if KIND == 'stream' and serial ~= '' and #groups > 0 then
      held = true  -- already placed above, per consumer group
    elseif KIND ~= 'stream' or held or due > now then
      redis.call('HSET', K_MSGS, id, body)
    end
    if not held then
      if due > now then
        redis.call('ZADD', K_DELAYED, due, id)
      else
        push_ready(key, id, false, body)
      end
    end
    ids[#ids + 1] = id
  end
end
return ids
