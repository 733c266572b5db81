-- Claim entries of group ARGV[A] idle past ARGV[A+2] ms for consumer ARGV[A+1]
-- (XAUTOCLAIM). An entry reclaimed more than ARGV[A+3] times, or past ARGV[A+4]
-- attempts, goes to the failed store. ARGV[A+5] = count, ARGV[A+6] = n, the number of
-- priorities, then the n priorities, then the n cursors to scan each one's pending list
-- from ('0-0': its start; '': skip it, its scan of this pass is done). XAUTOCLAIM looks
-- at count x 10 pending entries a call at most, so a scan can take several calls.
-- Consumers without pending entries idle for twice the lease are removed from the
-- group. Returns {full, the n next cursors ('' for a level skipped), then entry id, id,
-- body, attempt, priority per entry}, where full is 1 if some priority claimed count
-- entries (more may be idle).
local group, consumer, idle = ARGV[A], ARGV[A + 1], ARGV[A + 2]
local max_reclaims, max_attempts = tonumber(ARGV[A + 3]), tonumber(ARGV[A + 4])
local count = tonumber(ARGV[A + 5])
local levels = tonumber(ARGV[A + 6])
local now = now_ms()
local out = {0}
for j = 1, levels do out[1 + j] = '' end  -- the cursors' places, before any entry

-- One claimed entry: back to its worker (in out), to the failed store, or let go.
local function settle(key, prio, eid, fields, gone)
  local f = {}
  for k = 1, #fields, 2 do f[fields[k]] = fields[k + 1] end
  local delivered = owned(key, group, consumer, {eid})[eid] or 1
  local attempt = (tonumber(f.a) or 0) + delivered
  local id = f.i or eid
  if f.g and f.g ~= group then
    gone[#gone + 1] = eid
  elseif delivered - 1 > max_reclaims or attempt > max_attempts then
    local why = 'Reclaimed: the entry was claimed ' .. (delivered - 1) ..
                ' times after its consumer stopped acknowledging (max_reclaims ' ..
                max_reclaims .. ')'
    if attempt > max_attempts then
      why = 'LeaseExpired: the lease expired after attempt ' .. (attempt - 1) ..
            ' (the worker died or hung)'
    end
    local member = id .. '|' .. group
    redis.call('XACK', key, group, eid)
    redis.call('HSET', K_MSGS, member, f.m or '')
    local reason = 'reclaim-limit'
    if attempt > max_attempts then reason = 'lease-expired' end
    redis.call('HSET', K_FAILED, member, record(why, attempt - 1, reason, group, now))
    local m = decode(f.m)
    if m then
      ident_done(str(m.identifier))
      stream_serial_release(group, str(m.serial_group), id, now)
    end
  else
    out[#out + 1] = eid; out[#out + 1] = id; out[#out + 1] = f.m or ''
    out[#out + 1] = attempt; out[#out + 1] = prio
  end
end

local function reclaim_level(j, prio, from)
  local key = PRIO_KEY[prio]
  -- Redis 6.2 replies {cursor, entries}; 7.x adds the ids of deleted entries.
  local r = call_with_group(key, group, 'XAUTOCLAIM', key, group, consumer, idle, from,
                            'COUNT', count)
  out[1 + j] = r[1]
  if #r[2] + #(r[3] or {}) >= count then out[1] = 1 end
  local gone, ghosts = {}, false
  for _, entry in ipairs(r[2]) do
    if not entry then
      -- 7.x lists deleted entries apart (r[3], already off the pending list); 6.2
      -- answers one with a nil in its place and leaves it pending, now to this consumer.
      ghosts = true
    elseif not entry[2] then
      gone[#gone + 1] = entry[1]
    else
      settle(key, prio, entry[1], entry[2], gone)
    end
  end
  if ghosts then
    -- Their ids are not in the reply: among this consumer's pending entries in the part
    -- of the list this call scanned, the ones the stream no longer has.
    local upto = '+'
    if r[1] ~= '0-0' then upto = '(' .. r[1] end
    local pending = redis.call('XPENDING', key, group, from, upto, count * 10, consumer)
    for _, p in ipairs(pending) do
      if #redis.call('XRANGE', key, p[1], p[1]) == 0 then gone[#gone + 1] = p[1] end
    end
  end
  if #gone > 0 then redis.call('XACK', key, group, unpack(gone)) end
  prune_consumers(key, group, 2 * tonumber(idle))
end

for j = 1, levels do
  local from = ARGV[A + 6 + levels + j]
  if from ~= '' then reclaim_level(j, ARGV[A + 6 + j], from) end
end
return out
