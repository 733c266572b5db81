-- Reset the idle time of owned entries (the lease), without counting a delivery.
-- ARGV: group, consumer, then pairs priority, entry id. Returns the entry ids not ours.
local group, consumer = ARGV[A], ARGV[A + 1]
local lost = {}
local by_prio = {}
for i = A + 2, #ARGV, 2 do
  by_prio[ARGV[i]] = by_prio[ARGV[i]] or {}
  table.insert(by_prio[ARGV[i]], ARGV[i + 1])
end
for prio, ids in pairs(by_prio) do
  local key = PRIO_KEY[prio]
  local mine = owned(key, group, consumer, ids)
  local keep = {}
  for _, id in ipairs(ids) do
    if mine[id] then keep[#keep + 1] = id else lost[#lost + 1] = id end
  end
  if #keep > 0 then
    redis.call('XCLAIM', key, group, consumer, 0, unpack(keep), 'JUSTID')
  end
end
return lost
