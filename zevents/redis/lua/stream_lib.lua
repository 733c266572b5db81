-- Stream helpers (appended after lib.lua for the stream scripts).

-- Whether consumer group `group` exists on stream `key` (read from XINFO, so a missing
-- group is told by the server's state, never by an error's text).
local function has_group(key, group)
  if redis.call('EXISTS', key) == 0 then return false end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    for k = 1, #g, 2 do
      if g[k] == 'name' and g[k + 1] == group then return true end
    end
  end
  return false
end

-- Create `group` on `key` from the start if it is missing; true if it was created.
local function ensure_group(key, group)
  if has_group(key, group) then return false end
  redis.call('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
  return true
end

-- redis.call(...) that, when it fails because `group` is gone (a Redis restart without
-- persistence, FLUSHALL, XGROUP DESTROY), creates the group again and retries once.
local function call_with_group(key, group, ...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    -- Some other failure: run it again unprotected, so it raises as it would have.
    if not has_group(key, group) then ensure_group(key, group) end
    return redis.call(...)
  end
  return r
end

-- The entry ids of `ids` that are pending for `consumer` in `group` (fencing); none when
-- the group is gone.
local function owned(key, group, consumer, ids)
  local mine = {}
  if #ids == 0 then return mine end
  local lo, hi = ids[1], ids[1]
  local l1, l2 = string.match(lo, '^(%d+)%-(%d+)$')
  l1, l2 = tonumber(l1), tonumber(l2)
  local h1, h2 = l1, l2
  for _, id in ipairs(ids) do
    local a1, a2 = string.match(id, '^(%d+)%-(%d+)$')
    a1, a2 = tonumber(a1), tonumber(a2)
    if a1 < l1 or (a1 == l1 and a2 < l2) then lo, l1, l2 = id, a1, a2 end
    if a1 > h1 or (a1 == h1 and a2 > h2) then hi, h1, h2 = id, a1, a2 end
  end
  local count = #ids + 1000
  local pending = redis.pcall('XPENDING', key, group, lo, hi, count, consumer)
  if type(pending) == 'table' and pending.err then
    if not has_group(key, group) then return mine end
    pending = redis.call('XPENDING', key, group, lo, hi, count, consumer)  -- raises
  end
  for _, p in ipairs(pending) do mine[p[1]] = tonumber(p[4]) end
  return mine
end

-- Trim entries every group has acknowledged, never one still pending (XTRIM MINID).
local function trim(key)
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', key)
  if not ok or #groups == 0 then return end
  local min1, min2 = nil, nil
  for _, g in ipairs(groups) do
    local info = {}
    for k = 1, #g, 2 do info[g[k]] = g[k + 1] end
    local t1, t2
    if tonumber(info['pending']) > 0 then
      local summary = redis.call('XPENDING', key, info['name'])
      t1, t2 = string.match(summary[2], '^(%d+)%-(%d+)$')
      t1, t2 = tonumber(t1), tonumber(t2)
    else
      t1, t2 = string.match(info['last-delivered-id'], '^(%d+)%-(%d+)$')
      t1, t2 = tonumber(t1), tonumber(t2) + 1
    end
    if min1 == nil or t1 < min1 or (t1 == min1 and t2 < min2) then min1, min2 = t1, t2 end
  end
  if min1 and (min1 > 0 or min2 > 1) then
    redis.call('XTRIM', key, 'MINID', fmt(min1) .. '-' .. fmt(min2))
  end
end

-- Remove consumers of `group` that hold no pending entry and were idle longer than
-- `idle` ms (workers that stopped or died and whose entries were reclaimed). Removing
-- an empty consumer loses nothing: reading as that name again recreates it.
local function prune_consumers(key, group, idle)
  local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', key, group)
  if not ok then return end
  for _, c in ipairs(consumers) do
    local info = {}
    for k = 1, #c, 2 do info[c[k]] = c[k + 1] end
    if tonumber(info['pending']) == 0 and tonumber(info['idle']) > idle then
      redis.call('XGROUP', 'DELCONSUMER', key, group, info['name'])
    end
  end
end
