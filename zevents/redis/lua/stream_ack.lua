-- Acknowledge entries of group ARGV[A] that consumer ARGV[A+1] still owns, then trim.
-- ARGV[A+2..]: groups of 5: priority, entry id, message id, identifier, serial group.
-- Returns the entry ids not ours.
local group, consumer = ARGV[A], ARGV[A + 1]
local by_prio, extra = {}, {}
local order = {}
local now = nil
for i = A + 2, #ARGV, 5 do
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
    else
      lost[#lost + 1] = id
    end
  end
  if #ack > 0 then redis.call('XACK', key, group, unpack(ack)) end
  trim(key)
end
return lost
