-- Create consumer group ARGV[A] on every priority stream that lacks it, reading from the
-- start of what the stream holds (MKSTREAM creates a missing stream). Returns how many
-- groups were created.
local n = 0
for _, prio in ipairs(PRIOS) do
  if ensure_group(PRIO_KEY[prio], ARGV[A]) then n = n + 1 end
end
return n
