-- Acknowledge entries of group ARGV[A] that consumer ARGV[A+1] still owns, then trim.
-- ARGV[A+2..]: groups of 5: priority, entry id, message id, identifier, serial group.
-- Returns the entry ids not ours.
-- With finished records (keep_finished): KEYS has the finished sorted set after the
-- stream keys, ARGV[A+2] is how long records are kept (ms), and each group has a sixth
-- field, the record (a JSON object; '' for none), stored with its group and finished_at.
local group, consumer = ARGV[A], ARGV[A + 1]
local K_FINISHED = KEYS[12 + NPRI]
local FIRST, STEP, KEEP = A + 2, 5, nil
if K_FINISHED then KEEP = tonumber(ARGV[A + 2]); FIRST = A + 3; STEP = 6 end
local by_prio, extra = {}, {}
local order = {}
local now = nil
for i = FIRST, #ARGV, STEP do
  local prio = ARGV[i]
  if not by_prio[prio] then by_prio[prio] = {}; order[#order + 1] = prio end
  table.insert(by_prio[prio], ARGV[i + 1])
  extra[ARGV[i + 1]] = i
end
local lost = {}
for _, prio in ipairs(order) do
  local key = PRIO_KEY[prio]
  local ids = by_prio[prio]
  local mine = owned(key, group, consumer, ids)
  local ack = {}
  for _, id in ipairs(ids) do
    if mine[id] then
      ack[#ack + 1] = id
      local i = extra[id]
      ident_done(ARGV[i + 3])
      if ARGV[i + 4] ~= '' then
        now = now or now_ms()
        stream_serial_release(group, ARGV[i + 4], ARGV[i + 2], now)
      end
      if KEEP and ARGV[i + 5] ~= '' then
        now = now or now_ms()
        local record = splice(ARGV[i + 5], 'group', cjson.encode(group))
        redis.call('ZADD', K_FINISHED, now, splice(record, 'finished_at', fmt(now)))
      end
    else
      lost[#lost + 1] = id
    end
  end
  if #ack > 0 then redis.call('XACK', key, group, unpack(ack)) end
  trim(key)
end
if KEEP then
  now = now or now_ms()
  redis.call('ZREMRANGEBYSCORE', K_FINISHED, '-inf', '(' .. fmt(now - KEEP))
end
return lost
