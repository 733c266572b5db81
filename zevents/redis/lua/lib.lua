-- Shared prelude, prepended to every zevents queue script.
-- KEYS: 1 msgs, 2 delayed, 3 processing, 4 leases, 5 attempts, 6 failed, 7 idents,
--       8 ident_ids, 9 serial, 10 seq, 11 status, 12.. one ready key per priority.
-- ARGV: 1 driver kind, 2 default priority, 3 number of priorities, 4.. the priorities
--       (same order as the ready keys), then the script's own arguments from ARGV[A].
if redis.replicate_commands then redis.replicate_commands() end

local K_MSGS, K_DELAYED, K_PROC, K_LEASES, K_ATTEMPTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_FAILED, K_IDENTS, K_IDENT_IDS, K_SERIAL = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local K_SEQ, K_STATUS = KEYS[10], KEYS[11]
local KIND = ARGV[1]
local DEFAULT_PRIO = ARGV[2]
local NPRI = tonumber(ARGV[3])
local PRIOS, PRIO_KEY = {}, {}
for i = 1, NPRI do
  PRIOS[i] = ARGV[3 + i]
  PRIO_KEY[ARGV[3 + i]] = KEYS[11 + i]
end
local A = 4 + NPRI
-- A field no message id can be, kept in the lease and attempt hashes (see take.lua).
local WIDE_FIELD = '~encoding'
local WIDE_VALUE = 'keeps this hash in the hashtable encoding: no message has this field'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n) return string.format('%d', n) end

-- Append one JSON field to an encoded object without decoding it.
local function splice(json, name, value)
  return string.sub(json, 1, -2) .. ',"' .. name .. '":' .. value .. '}'
end

local function seq_of(id)
  local s = string.match(id, '^%d+%-(%d+)$')
  if s then return tonumber(s) end
  return redis.call('INCR', K_SEQ)
end

local function decode(body)
  if not body then return nil end
  local ok, msg = pcall(cjson.decode, body)
  if ok and type(msg) == 'table' then return msg end
  return nil
end

local function str(v)
  if v == nil or v == cjson.null then return '' end
  return tostring(v)
end

-- The priority a stored message belongs to: its own "priority" field, or the queue's
-- default when it has none (a message written by another program). nil for no message.
local function prio_of(msg)
  if msg == nil then return nil end
  if msg.priority == nil or msg.priority == cjson.null then return DEFAULT_PRIO end
  return tostring(msg.priority)
end

-- Put a message where workers take it. head: it was taken before, serve it first.
local function push_ready(key, id, head, body, attempts, group)
  if KIND == 'list' then
    if head then redis.call('LPUSH', key, id) else redis.call('RPUSH', key, id) end
  elseif KIND == 'sorted-set' then
    redis.call('ZADD', key, seq_of(id), id)
  elseif KIND == 'set' then
    redis.call('SADD', key, id)
  else
    local fields = {'i', id, 'm', body}
    if attempts and attempts ~= '' and attempts ~= '0' then
      fields[#fields + 1] = 'a'; fields[#fields + 1] = attempts
    end
    if group and group ~= '' then fields[#fields + 1] = 'g'; fields[#fields + 1] = group end
    redis.call('XADD', key, '*', unpack(fields))
  end
end

local function record(err, attempts, reason, group, now)
  return cjson.encode({error = err, attempts = attempts, reason = reason,
                       group = group, failed_at = now})
end

local function ident_done(ident, n)
  if ident == nil or ident == '' then return end
  local c = redis.call('HINCRBY', K_IDENTS, ident, -(n or 1))
  if c <= 0 then
    redis.call('HDEL', K_IDENTS, ident)
    redis.call('HDEL', K_IDENT_IDS, ident)
  end
end

-- Serial members: group \0 seq(16 digits) \0 priority \0 due ms \0 id. On the stream
-- driver each consumer group has its own chains: group is `<consumer group>\1<serial
-- group>` and id is `<id>|<consumer group>`.
local function serial_parse(m)
  return string.match(m, '^(.-)%z(%d+)%z([^%z]*)%z(%d+)%z(.*)$')
end

local function serial_head(group)
  local r = redis.call('ZRANGEBYLEX', K_SERIAL, '[' .. group .. '\0', '(' .. group .. '\1',
                       'LIMIT', 0, 1)
  return r[1]
end

-- A serial message is finished: drop it and make the next of its group due.
local function serial_release(group, id, now)
  if group == nil or group == '' then return end
  local head = serial_head(group)
  if not head then return end
  local _, _, _, _, hid = serial_parse(head)
  if hid ~= id then
    local all = redis.call('ZRANGEBYLEX', K_SERIAL, '[' .. group .. '\0', '(' .. group .. '\1')
    for _, m in ipairs(all) do
      local _, _, _, _, mid = serial_parse(m)
      if mid == id then redis.call('ZREM', K_SERIAL, m) end
    end
    return
  end
  redis.call('ZREM', K_SERIAL, head)
  while true do
    local nxt = serial_head(group)
    if not nxt then return end
    local _, _, prio, due, nid = serial_parse(nxt)
    local key = PRIO_KEY[prio]
    if redis.call('HEXISTS', K_MSGS, nid) == 1 and key then
      if tonumber(due) > now then
        redis.call('ZADD', K_DELAYED, due, nid)
      elseif KIND == 'stream' then
        -- nid is 'id|group': an entry for that consumer group only
        local mid, cg = string.match(nid, '^([^|]*)|(.*)$')
        push_ready(key, mid, false, redis.call('HGET', K_MSGS, nid),
                   redis.call('HGET', K_ATTEMPTS, nid) or '', cg)
        redis.call('HDEL', K_MSGS, nid)
        redis.call('HDEL', K_ATTEMPTS, nid)
      else
        push_ready(key, nid, false, redis.call('HGET', K_MSGS, nid))
      end
      return
    end
    redis.call('ZREM', K_SERIAL, nxt)
  end
end

local function serial_member(group, seq, prio, due, id)
  return group .. '\0' .. string.format('%016d', seq) .. '\0' .. prio .. '\0' .. fmt(due) ..
         '\0' .. id
end

-- A stream message of consumer group cg finished: release its serial chain, if any.
local function stream_serial_release(cg, serial, id, now)
  if serial == nil or serial == '' then return end
  serial_release(cg .. '\1' .. serial, id .. '|' .. cg, now)
end

local function finish(id, ident, group, now)
  ident_done(ident)
  serial_release(group, id, now)
end

-- Move due delayed messages to ready, oldest due first, in a bounded batch.
local function move_due(now)
  local due = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', now, 'LIMIT', 0, 500)
  if #due == 0 then return end
  for _, member in ipairs(due) do
    local body = redis.call('HGET', K_MSGS, member)
    if body then
      local msg = decode(body)
      local prio = prio_of(msg) or ''
      local key = PRIO_KEY[prio]
      if not key then
        local why = msg and ('no ready key for priority ' .. prio) or 'body is not valid JSON'
        local att = tonumber(redis.call('HGET', K_ATTEMPTS, member) or '0')
        redis.call('HSET', K_FAILED, member,
                   record('DecodeError: ' .. why, att, 'undeliverable', nil, now))
      elseif KIND == 'stream' then
        local id, group = string.match(member, '^([^|]*)|(.*)$')
        if not id then id = member; group = '' end
        push_ready(key, id, false, body, redis.call('HGET', K_ATTEMPTS, member) or '', group)
        redis.call('HDEL', K_MSGS, member)
        redis.call('HDEL', K_ATTEMPTS, member)
      else
        push_ready(key, member, false)
      end
    else
      local att = tonumber(redis.call('HGET', K_ATTEMPTS, member) or '0')
      redis.call('HDEL', K_ATTEMPTS, member)
      redis.call('HSET', K_FAILED, member,
                 record('DecodeError: no message body stored for delayed id ' .. member, att,
                        'undecodable', nil, now))
    end
  end
  redis.call('ZREM', K_DELAYED, unpack(due))
end
