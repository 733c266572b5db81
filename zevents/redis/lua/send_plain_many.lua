-- Enqueue many plain messages (no delay, identifier or serial group) in one call, for
-- send_many: one INCRBY, one HSET and one push per priority level, instead of three
-- calls per message. KEYS: 1 msgs, 2 seq, then the ready key of each priority level.
-- ARGV: 1 driver kind, 2 '' when this script stamps each body with enqueued_at, else the
-- bodies carry it already (the sender read TIME once for the batch: a splice per body
-- here makes a string per message, and Lua's string table chains bodies that differ in
-- only a few bytes), 3 '1' when each message comes with its id (the set driver passes
-- its content hash; '' = generate), else '0', then runs of one priority: its ready key
-- number (1 = KEYS[3]), the run's length, and each message's id (when ARGV[3] is '1')
-- and body (a JSON object). Returns {now, first} when it made the ids: they are
-- now-(first + 1), now-(first + 2)..., in order; when they were given, how many
-- messages it queued (the ids are the given ones: on the set driver a message already
-- stored, or repeated in the batch, is not queued again, and its id, its content's
-- hash, is the one given).
if redis.replicate_commands then redis.replicate_commands() end
local kind = ARGV[1]
local stamp = ARGV[2] == ''
local given = ARGV[3] == '1'
local per = given and 2 or 1
local n, at = 0, 4
while at <= #ARGV do
  local c = tonumber(ARGV[at + 1])
  n = n + c
  at = at + 2 + c * per
end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local first = redis.call('INCRBY', KEYS[2], n) - n
local fields, per_key, seen = {}, {}, {}
local i, nf, queued = 0, 0, 0
at = 4
while at <= #ARGV do
  local k, c = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  at = at + 2
  local key = KEYS[2 + k]
  local list = per_key[k]
  if not list then list = {}; per_key[k] = list end
  local nl = #list
  for _ = 1, c do
    i = i + 1
    local id, body = '', nil
    if given then id = ARGV[at]; at = at + 1 end
    body = ARGV[at]; at = at + 1
    local seq = first + i
    if id == '' then id = now .. '-' .. seq end
    if stamp then body = string.sub(body, 1, -2) .. ',"enqueued_at":' .. now .. '}' end
    if kind == 'stream' then
      redis.call('XADD', key, '*', 'i', id, 'm', body)
    elseif kind == 'set' then
      -- Stored here unless a message of the same content already is (or came earlier
      -- in this batch): then it is not queued again.
      if not seen[id] and redis.call('HSETNX', KEYS[1], id, body) == 1 then
        nl = nl + 1; list[nl] = id; queued = queued + 1
      end
      seen[id] = true
    else
      fields[nf + 1] = id; fields[nf + 2] = body; nf = nf + 2
      if kind == 'sorted-set' then nl = nl + 1; list[nl] = seq end
      nl = nl + 1; list[nl] = id
    end
  end
end
-- In chunks of 4,000 arguments: Lua's stack bounds how many one call may take (an
-- even size, so sorted-set score/member pairs stay together).
local function in_chunks(command, key, values)
  for s = 1, #values, 4000 do
    redis.call(command, key, unpack(values, s, math.min(s + 3999, #values)))
  end
end
if nf > 0 then in_chunks('HSET', KEYS[1], fields) end
if kind ~= 'stream' then
  local push = ({list = 'RPUSH', ['sorted-set'] = 'ZADD', set = 'SADD'})[kind]
  for k, list in pairs(per_key) do
    if #list > 0 then in_chunks(push, KEYS[2 + k], list) end
  end
end
if given then
  return kind == 'set' and queued or i
end
return {now, first}
