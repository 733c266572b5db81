-- Give back owned entries never started: mark them idle past the lease, with the
-- delivery uncounted, so the next reclaim takes them at once.
-- ARGV: group, consumer, idle ms, then pairs priority, entry id. Returns the count.
local group, consumer, idle = ARGV[A], ARGV[A + 1], ARGV[A + 2]
local n = 0
for i = A + 3, #ARGV, 2 do
  local key = PRIO_KEY[ARGV[i]]
  local eid = ARGV[i + 1]
  local delivered = owned(key, group, consumer, {eid})[eid]
  if delivered then
    redis.call('XCLAIM', key, group, consumer, 0, eid, 'IDLE', idle,
               'RETRYCOUNT', math.max(delivered - 1, 0), 'JUSTID')
    n = n + 1
  end
end
return n
