-- Read up to ARGV[A+2] new entries for group ARGV[A], consumer ARGV[A+1], from the
-- priorities ARGV[A+4..] (highest first). Entries meant for another group (a retry) are
-- acknowledged and skipped. Returns {entry id, id, body, attempt, priority, ...}.
local group, consumer = ARGV[A], ARGV[A + 1]
move_due(now_ms())
local want = tonumber(ARGV[A + 2])
local out = {}
for j = A + 4, A + 3 + tonumber(ARGV[A + 3]) do
  if want <= 0 then break end
  local prio = ARGV[j]
  local key = PRIO_KEY[prio]
  local r = call_with_group(key, group, 'XREADGROUP', 'GROUP', group, consumer, 'COUNT', want,
                            'STREAMS', key, '>')
  if r then
    local skip = {}
    for _, entry in ipairs(r[1][2]) do
      local fields = entry[2]
      local i, m, a, g = nil, nil, nil, nil
      for k = 1, #fields, 2 do
        local name = fields[k]
        if name == 'm' then m = fields[k + 1]
        elseif name == 'i' then i = fields[k + 1]
        elseif name == 'a' then a = fields[k + 1]
        elseif name == 'g' then g = fields[k + 1] end
      end
      if g and g ~= group then
        skip[#skip + 1] = entry[1]
      else
        local n = #out
        out[n + 1] = entry[1]; out[n + 2] = i or entry[1]; out[n + 3] = m or ''
        out[n + 4] = (tonumber(a) or 0) + 1; out[n + 5] = prio
        want = want - 1
      end
    end
    if #skip > 0 then redis.call('XACK', key, group, unpack(skip)) end
  end
end
return out
