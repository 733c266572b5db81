-- Acknowledge an owned entry and put its message back for this group only, due after
-- a delay. ARGV: group, consumer, priority, entry id, id, body, attempts so far, delay ms.
local group, consumer, prio, eid = ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3]
local key = PRIO_KEY[prio]
if not owned(key, group, consumer, {eid})[eid] then return 0 end
local member = ARGV[A + 4] .. '|' .. group
redis.call('XACK', key, group, eid)
redis.call('HSET', K_MSGS, member, ARGV[A + 5])
redis.call('HSET', K_ATTEMPTS, member, ARGV[A + 6])
redis.call('ZADD', K_DELAYED, now_ms() + tonumber(ARGV[A + 7]), member)
trim(key)
return 1
