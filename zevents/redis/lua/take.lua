-- Take up to ARGV[A] due messages under a lease of ARGV[A+1] ms, from the priorities
-- ARGV[A+3..] (highest first). Returns {token, id, body, attempt, priority, ...}.
local now = now_ms()
move_due(now)
local want = tonumber(ARGV[A])
local deadline = now + tonumber(ARGV[A + 1])
local out = {}
local leased_z, leased_h, attempts = {}, {}, {}
local token = nil
for j = A + 3, A + 2 + tonumber(ARGV[A + 2]) do
  if want <= 0 then break end
  local prio = ARGV[j]
  local key = PRIO_KEY[prio]
  local ids = {}
  if KIND == 'list' then
    ids = redis.call('LPOP', key, want) or {}
  elseif KIND == 'sorted-set' then
    local r = redis.call('ZPOPMIN', key, want)
    for k = 1, #r, 2 do ids[#ids + 1] = r[k] end
  else
    ids = redis.call('SPOP', key, want) or {}
  end
  if #ids > 0 then
    want = want - #ids
    if not token then token = fmt(redis.call('INCR', K_SEQ)) end
    local bodies = redis.call('HMGET', K_MSGS, unpack(ids))
    local counts = redis.call('HMGET', K_ATTEMPTS, unpack(ids))
    for k, id in ipairs(ids) do
      local body = bodies[k]
      if body then
        local att = (tonumber(counts[k]) or 0) + 1
        attempts[#attempts + 1] = id; attempts[#attempts + 1] = att
        out[#out + 1] = id; out[#out + 1] = body; out[#out + 1] = att; out[#out + 1] = prio
        leased_z[#leased_z + 1] = deadline; leased_z[#leased_z + 1] = id
        leased_h[#leased_h + 1] = id; leased_h[#leased_h + 1] = token
      else
        redis.call('HSET', K_FAILED, id,
                   record('DecodeError: no message body stored for id ' .. id, 0,
                          'undecodable', nil, now))
      end
    end
  end
end
if #leased_z > 0 then
  -- Keep the lease and attempt hashes in Redis' hashtable encoding. A small hash
  -- (ziplist or listpack: up to 512 entries with Redis 6.2's defaults, 128 with 7's)
  -- scans all its entries for each field, so with a worker's batches in flight every
  -- take and ack would cost the square of the messages held. One value longer than
  -- hash-max-ziplist-value (64 bytes by default) converts a hash for as long as it lives.
  redis.call('HSETNX', K_LEASES, WIDE_FIELD, WIDE_VALUE)
  redis.call('HSETNX', K_ATTEMPTS, WIDE_FIELD, WIDE_VALUE)
  -- The same for the leases' deadlines (a small sorted set is a ziplist or listpack
  -- up to 128 entries): a member no id can be, due never (+inf: no reclaim reaches it).
  redis.call('ZADD', K_PROC, 'NX', '+inf', WIDE_VALUE)
  redis.call('ZADD', K_PROC, unpack(leased_z))
  redis.call('HSET', K_LEASES, unpack(leased_h))
  redis.call('HSET', K_ATTEMPTS, unpack(attempts))
end
table.insert(out, 1, token or '')
return out
