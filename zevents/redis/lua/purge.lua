-- Old messages stored in the msgs hash that no consumer has: ready ones (list,
-- sorted-set, set) and delayed ones (every driver, stream retries included). Purging
-- and archiving with force remove them; stream entries have stream_purge.lua.
-- ARGV[A] mode:
--   'scan': ARGV[A+1] HSCAN cursor, ARGV[A+2] count, ARGV[A+3] cutoff ms (messages
--     enqueued before it), ARGV[A+4] '1' to return bodies. Returns {next cursor,
--     member, body or '', location, ...}.
--   'delete': pairs member, location (as scan returned them): each is deleted if it
--     is still there, as a finished message would be (identifier and serial group
--     released). Returns {deleted, kept member, ...}.

-- Where a stored message is, if purge may take it: 'delayed', 'delayed:<group>' (a
-- stream group's retry), 'ready:<priority>'; nil when a worker holds it, it failed,
-- it waits behind its serial group, or it is a stream group's held copy.
local function place(member, msg)
  if redis.call('ZSCORE', K_PROC, member) or redis.call('HEXISTS', K_FAILED, member) == 1 then
    return nil
  end
  if redis.call('ZSCORE', K_DELAYED, member) then
    local group = KIND == 'stream' and string.match(member, '^[^|]*|(.*)$')
    if group then return 'delayed:' .. group end
    return 'delayed'
  end
  if KIND == 'stream' then return nil end
  local serial = str(msg.serial_group)
  if serial ~= '' then
    local head = serial_head(serial)
    if head then
      local _, _, _, _, hid = serial_parse(head)
      if hid ~= member then return nil end
    end
  end
  local prio = prio_of(msg)
  local key = PRIO_KEY[prio]
  if not key then return nil end
  if KIND == 'sorted-set' and not redis.call('ZSCORE', key, member) then return nil end
  if KIND == 'set' and redis.call('SISMEMBER', key, member) == 0 then return nil end
  return 'ready:' .. prio
end

-- The consumer groups a stream message sent now would reach (for its identifier count).
local function group_count(prio)
  local key = PRIO_KEY[prio]
  if not key or redis.call('EXISTS', key) == 0 then return 1 end
  local n = #redis.call('XINFO', 'GROUPS', key)
  if n == 0 then return 1 end
  return n
end

local function drop(member, msg, location, now)
  if location == 'delayed' or string.sub(location, 1, 8) == 'delayed:' then
    redis.call('ZREM', K_DELAYED, member)
  else
    local key = PRIO_KEY[string.sub(location, 7)]
    local removed
    if KIND == 'list' then
      removed = redis.call('LREM', key, 1, member)
    elseif KIND == 'sorted-set' then
      removed = redis.call('ZREM', key, member)
    else
      removed = redis.call('SREM', key, member)
    end
    if removed == 0 then return false end
  end
  redis.call('HDEL', K_MSGS, member)
  redis.call('HDEL', K_ATTEMPTS, member)
  redis.call('HDEL', K_STATUS, member)
  local ident, serial = str(msg.identifier), str(msg.serial_group)
  if KIND ~= 'stream' then
    finish(member, ident, serial, now)
  else
    local id, group = string.match(member, '^([^|]*)|(.*)$')
    if group then
      ident_done(ident)
      stream_serial_release(group, serial, id, now)
    else
      ident_done(ident, group_count(prio_of(msg)))
    end
  end
  return true
end

local mode = ARGV[A]
if mode == 'scan' then
  local cutoff, bodies = tonumber(ARGV[A + 3]), ARGV[A + 4] == '1'
  local r = redis.call('HSCAN', K_MSGS, ARGV[A + 1], 'COUNT', tonumber(ARGV[A + 2]))
  local out = {r[1]}
  local pairs_ = r[2]
  for i = 1, #pairs_, 2 do
    local member, body = pairs_[i], pairs_[i + 1]
    local msg = decode(body)
    local at = msg and tonumber(msg.enqueued_at)
    if at and at < cutoff then
      local location = place(member, msg)
      if location then
        out[#out + 1] = member
        out[#out + 1] = bodies and body or ''
        out[#out + 1] = location
      end
    end
  end
  return out
end

local now = now_ms()
local deleted, kept = 0, {}
for i = A + 1, #ARGV, 2 do
  local member, location = ARGV[i], ARGV[i + 1]
  local msg = decode(redis.call('HGET', K_MSGS, member))
  if msg and place(member, msg) == location and drop(member, msg, location, now) then
    deleted = deleted + 1
  else
    kept[#kept + 1] = member
  end
end
table.insert(kept, 1, deleted)
return kept
