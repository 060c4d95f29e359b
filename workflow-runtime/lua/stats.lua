-- stats.lua: sizes of one queue X. Read-only.
-- KEYS: none; reads ns:X.msgs, ns:X.DQ.msgs, ns:X.XQ and the acks sets of every worker with a
--   heartbeat (ns:__acks__.<w>.X, ns:__acks__.<w>.X.DQ).
-- ARGV[1]: namespace; ARGV[2]: the canonical queue X.
-- Returns: { payloads on X (ready + in flight), payloads on X.DQ, in flight from X,
--   in flight from X.DQ, dead letters }.

local ns, q = ARGV[1], ARGV[2]
local workers = redis.call('ZRANGE', ns .. ':__heartbeats__', 0, -1)
local fq, fdq = 0, 0
for _, w in ipairs(workers) do
    fq = fq + redis.call('SCARD', ns .. ':__acks__.' .. w .. '.' .. q)
    fdq = fdq + redis.call('SCARD', ns .. ':__acks__.' .. w .. '.' .. q .. '.DQ')
end
return {
    redis.call('HLEN', ns .. ':' .. q .. '.msgs'),
    redis.call('HLEN', ns .. ':' .. q .. '.DQ.msgs'),
    fq, fdq,
    redis.call('ZCARD', ns .. ':' .. q .. '.XQ'),
}
