-- Acknowledge an owned entry and store its message as failed for this group.
-- ARGV: group, consumer, priority, entry id, id, body, record (JSON), identifier, serial
-- group.
local group, consumer, prio, eid = ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3]
local key = PRIO_KEY[prio]
if not owned(key, group, consumer, {eid})[eid] then return 0 end
local member = ARGV[A + 4] .. '|' .. group
redis.call('XACK', key, group, eid)
redis.call('HSET', K_MSGS, member, ARGV[A + 5])
redis.call('HSET', K_FAILED, member, splice(splice(ARGV[A + 6], 'group', cjson.encode(group)), 'failed_at', fmt(now_ms())))
redis.call('HDEL', K_STATUS, ARGV[A + 4])
ident_done(ARGV[A + 7])
stream_serial_release(group, ARGV[A + 8], ARGV[A + 4], now_ms())
trim(key)
return 1
