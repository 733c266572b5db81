-- Settle an owned entry of group ARGV[A+1] that did not finish: acknowledge it and keep
-- its message for this group only. ARGV: mode, group, consumer, priority, entry id, id,
-- body, then
--   mode 'retry': attempts so far, delay ms (a new entry for this group once due);
--   mode 'fail': failure record (JSON object), identifier, serial group.
-- Returns 1, or 0 when the entry is no longer ours (fencing).
local mode, group, consumer, prio, eid = ARGV[A], ARGV[A + 1], ARGV[A + 2], ARGV[A + 3],
                                         ARGV[A + 4]
local id = ARGV[A + 5]
local key = PRIO_KEY[prio]
if not owned(key, group, consumer, {eid})[eid] then return 0 end
local member = id .. '|' .. group
redis.call('XACK', key, group, eid)
redis.call('HSET', K_MSGS, member, ARGV[A + 6])
if mode == 'retry' then
  redis.call('HSET', K_ATTEMPTS, member, ARGV[A + 7])
  redis.call('ZADD', K_DELAYED, now_ms() + tonumber(ARGV[A + 8]), member)
else
  local now = now_ms()
  local record = splice(ARGV[A + 7], 'group', cjson.encode(group))
  redis.call('HSET', K_FAILED, member, splice(record, 'failed_at', fmt(now)))
  redis.call('HDEL', K_STATUS, id)
  ident_done(ARGV[A + 8])
  stream_serial_release(group, ARGV[A + 9], id, now)
end
trim(key)
return 1
