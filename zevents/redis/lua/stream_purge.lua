-- Old entries of the priority streams, for purging and archiving. An entry is old when
-- its id's time (when it was added: sent, or re-added by a retry) is before the cutoff;
-- it is acknowledged when every consumer group it is for has acknowledged it (a group
-- it was delivered to and that no longer has it pending, or that skipped it).
-- ARGV[A] mode:
--   'trim': ARGV[A+1] cutoff ms. Deletes the old entries below the oldest entry some
--     group has not acknowledged (XTRIM MINID). Returns how many.
--   'scan': ARGV[A+1] priority, ARGV[A+2] XRANGE start ('-' or '(<entry id>'),
--     ARGV[A+3] count, ARGV[A+4] cutoff ms, ARGV[A+5] '1': force (unacknowledged ones
--     too), ARGV[A+6] '1': return bodies. Returns {entry id, message id, body or '',
--     '1' if unacknowledged else '0', ...}.
--   'delete': ARGV[A+1] priority, ARGV[A+2] force, then entry ids (as scan returned
--     them). An unacknowledged one (only with force) is acknowledged in the groups
--     that have it pending, its identifier and serial group released there. Returns
--     {acknowledged deleted, unacknowledged deleted, kept entry id, ...}.

local function parse_id(id)
  local a, b = string.match(id, '^(%d+)%-(%d+)$')
  return tonumber(a), tonumber(b)
end

local function before(x1, x2, y1, y2)
  return x1 < y1 or (x1 == y1 and x2 < y2)
end

-- The consumer groups of stream `key`: {name, last delivered id} each.
local function groups_of(key)
  local out = {}
  if redis.call('EXISTS', key) == 0 then return out end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local info = {}
    for k = 1, #g, 2 do info[g[k]] = g[k + 1] end
    out[#out + 1] = {info['name'], info['last-delivered-id'], tonumber(info['pending'])}
  end
  return out
end

-- The oldest entry id some group has not acknowledged (nil: no group, nothing is).
local function floor_of(key, groups)
  local f1, f2 = nil, nil
  for _, g in ipairs(groups) do
    local t1, t2
    if g[3] > 0 then
      t1, t2 = parse_id(redis.call('XPENDING', key, g[1])[2])
    else
      t1, t2 = parse_id(g[2])
      t2 = t2 + 1
    end
    if f1 == nil or before(t1, t2, f1, f2) then f1, f2 = t1, t2 end
  end
  return f1, f2
end

-- The groups that have not acknowledged entry `eid` (tagged `tag`, or for every group):
-- {name, pending?} each; with no group at all, the entry counts as unacknowledged.
local function unacked(key, groups, eid, tag)
  local out = {}
  if #groups == 0 then return {{nil, false}} end
  local e1, e2 = parse_id(eid)
  for _, g in ipairs(groups) do
    if not tag or tag == g[1] then
      local l1, l2 = parse_id(g[2])
      if before(l1, l2, e1, e2) then
        out[#out + 1] = {g[1], false}
      elseif #redis.call('XPENDING', key, g[1], eid, eid, 1) > 0 then
        out[#out + 1] = {g[1], true}
      end
    end
  end
  return out
end

local function fields_of(entry)
  local f = {}
  for k = 1, #entry[2], 2 do f[entry[2][k]] = entry[2][k + 1] end
  return f
end

local function release(key, eid, f, missing, now)
  local msg = decode(f.m) or {}
  local ident, serial, id = str(msg.identifier), str(msg.serial_group), f.i or eid
  for _, g in ipairs(missing) do
    if g[2] then redis.call('XACK', key, g[1], eid) end
    ident_done(ident)
    if g[1] then stream_serial_release(g[1], serial, id, now) end
  end
  redis.call('HDEL', K_STATUS, id)
end

local mode = ARGV[A]

if mode == 'trim' then
  local c1, c2 = tonumber(ARGV[A + 1]), 0
  local n = 0
  for i = 1, NPRI do
    local key = PRIO_KEY[PRIOS[i]]
    local f1, f2 = floor_of(key, groups_of(key))
    if f1 then
      if before(c1, c2, f1, f2) then f1, f2 = c1, c2 end
      n = n + redis.call('XTRIM', key, 'MINID', fmt(f1) .. '-' .. fmt(f2))
    end
  end
  return n
end

local key = PRIO_KEY[ARGV[A + 1]]
local groups = groups_of(key)

if mode == 'scan' then
  local c1, c2 = tonumber(ARGV[A + 4]), 0
  local force, bodies = ARGV[A + 5] == '1', ARGV[A + 6] == '1'
  if not force then
    local f1, f2 = floor_of(key, groups)
    if not f1 then return {} end
    if before(f1, f2, c1, c2) then c1, c2 = f1, f2 end
  end
  if c1 <= 0 and c2 <= 0 then return {} end
  local out = {}
  local range = redis.call('XRANGE', key, ARGV[A + 2], '(' .. fmt(c1) .. '-' .. fmt(c2),
                           'COUNT', tonumber(ARGV[A + 3]))
  for _, entry in ipairs(range) do
    local f = fields_of(entry)
    out[#out + 1] = entry[1]; out[#out + 1] = f.i or entry[1]
    out[#out + 1] = bodies and (f.m or '') or ''
    out[#out + 1] = (#unacked(key, groups, entry[1], f.g) > 0) and '1' or '0'
  end
  return out
end

local force = ARGV[A + 2] == '1'
local now = now_ms()
local done, forced, kept = 0, 0, {}
for i = A + 3, #ARGV do
  local eid = ARGV[i]
  local entry = redis.call('XRANGE', key, eid, eid)[1]
  local missing = entry and unacked(key, groups, eid, fields_of(entry).g)
  if not entry or (#missing > 0 and not force) then
    kept[#kept + 1] = eid
  else
    if #missing > 0 then
      release(key, eid, fields_of(entry), missing, now)
      forced = forced + 1
    else
      done = done + 1
    end
    redis.call('XDEL', key, eid)
  end
end
table.insert(kept, 1, forced)
table.insert(kept, 1, done)
return kept
