-- Finish messages. ARGV[A..]: groups of 4: id, lease token, identifier, serial group.
-- A message whose lease is no longer ours is left alone (fencing). Returns those ids.
-- With finished records (keep_finished): KEYS has the finished sorted set after the
-- ready keys, ARGV[A] is how long records are kept (ms), and each group has a fifth
-- field, the record (a JSON object; '' for none), stored with its finished_at.
local K_FINISHED = KEYS[12 + NPRI]
local STEP, KEEP = 4, nil
if K_FINISHED then KEEP = tonumber(ARGV[A]); A = A + 1; STEP = 5 end
local done, lost = {}, {}
local finished, records = {}, {}
local leases = {}
for i = A, #ARGV, STEP do leases[#leases + 1] = ARGV[i] end
if #leases == 0 then return lost end
local current = redis.call('HMGET', K_LEASES, unpack(leases))
local k = 0
for i = A, #ARGV, STEP do
  k = k + 1
  if current[k] == ARGV[i + 1] then
    done[#done + 1] = ARGV[i]
    if ARGV[i + 2] ~= '' or ARGV[i + 3] ~= '' then finished[#finished + 1] = i end
    if KEEP and ARGV[i + 4] ~= '' then records[#records + 1] = ARGV[i + 4] end
  else
    lost[#lost + 1] = ARGV[i]
  end
end
if #done > 0 then
  redis.call('HDEL', K_LEASES, unpack(done))
  redis.call('ZREM', K_PROC, unpack(done))
  redis.call('HDEL', K_MSGS, unpack(done))
  redis.call('HDEL', K_ATTEMPTS, unpack(done))
  redis.call('HDEL', K_STATUS, unpack(done))
end
if #finished > 0 or KEEP then
  local now = now_ms()
  for _, i in ipairs(finished) do finish(ARGV[i], ARGV[i + 2], ARGV[i + 3], now) end
  if KEEP then
    for _, record in ipairs(records) do
      redis.call('ZADD', K_FINISHED, now, splice(record, 'finished_at', fmt(now)))
    end
    redis.call('ZREMRANGEBYSCORE', K_FINISHED, '-inf', '(' .. fmt(now - KEEP))
  end
end
return lost
