-- Enqueue many plain messages (no delay, identifier or serial group) in one call, for
-- send_many: one INCRBY, one HSET and one push per priority level, instead of three
-- calls per message. KEYS: 1 msgs, 2 seq, then the ready key of each priority level.
-- ARGV: 1 driver kind, 2 '' when this script stamps each body with enqueued_at, else the
-- bodies carry it already (the sender read TIME once for the batch: a splice per body
-- here makes a string per message, and Lua's string table chains bodies that differ in
-- only a few bytes), then triples: ready key number (1 = KEYS[3]), id ('' = generate;
-- the set driver passes its content hash), body (JSON object). Returns the ids, in order;
-- on the set driver a message already stored (or repeated in the batch) is not queued
-- again and its existing id is returned.
if redis.replicate_commands then redis.replicate_commands() end
local kind = ARGV[1]
local stamp = ARGV[2] == ''
local n = (#ARGV - 2) / 3
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local first = redis.call('INCRBY', KEYS[2], n) - n
local ids, fields, per_key, seen = {}, {}, {}, {}
for i = 1, n do
  local at = 3 * i
  local k, id, body = tonumber(ARGV[at]), ARGV[at + 1], ARGV[at + 2]
  local seq = first + i
  if id == '' then id = now .. '-' .. seq end
  ids[i] = id
  local fresh = true
  if kind == 'set' then
    fresh = not seen[id] and redis.call('HEXISTS', KEYS[1], id) == 0
    seen[id] = true
  end
  if fresh then
    if stamp then body = string.sub(body, 1, -2) .. ',"enqueued_at":' .. now .. '}' end
    if kind == 'stream' then
      redis.call('XADD', KEYS[2 + k], '*', 'i', id, 'm', body)
    else
      fields[#fields + 1] = id
      fields[#fields + 1] = body
      local list = per_key[k]
      if not list then list = {}; per_key[k] = list end
      if kind == 'sorted-set' then list[#list + 1] = seq end
      list[#list + 1] = id
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
if #fields > 0 then
  in_chunks('HSET', KEYS[1], fields)
  local push = ({list = 'RPUSH', ['sorted-set'] = 'ZADD', set = 'SADD'})[kind]
  for k, list in pairs(per_key) do in_chunks(push, KEYS[2 + k], list) end
end
return ids
