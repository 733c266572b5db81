-- A consumer leaves group ARGV[A]: remove consumer ARGV[A+1] from the group on every
-- priority stream where it holds no pending entry (entries it still holds stay pending
-- under its name until another consumer reclaims them). Returns how many were removed.
local group, consumer = ARGV[A], ARGV[A + 1]
local n = 0
for _, prio in ipairs(PRIOS) do
  local key = PRIO_KEY[prio]
  local ok, pending = pcall(redis.call, 'XPENDING', key, group, '-', '+', 1, consumer)
  if ok and #pending == 0 then
    n = n + redis.call('XGROUP', 'DELCONSUMER', key, group, consumer)
  end
end
return n
