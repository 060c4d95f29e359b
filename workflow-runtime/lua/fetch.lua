-- fetch.lua: takes up to n messages from a queue for this worker (dramatiq's `fetch`).
-- KEYS: none; the keys are ns:Q, ns:Q.msgs and ns:__acks__.<worker>.Q, built from ARGV.
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id; ARGV[4]: queue (X or X.DQ);
-- ARGV[5]: how many at most (1..1000); ARGV[6]: "1" to also record this worker's heartbeat.
-- Returns: a flat array receipt1, payload1, receipt2, payload2, ... Receipts whose payload is
--   gone (acked elsewhere, or a skipped workflow node) are dropped, not added to acks.

local ns, q, worker = ARGV[1], ARGV[4], ARGV[3]
local n = tonumber(ARGV[5])
if not n or n < 1 or n > 1000 then
    return redis.error_reply('fetch: count must be 1..1000')
end
if ARGV[6] == '1' then
    redis.call('ZADD', ns .. ':__heartbeats__', ARGV[2], worker)
end
local ids = redis.call('LPOP', ns .. ':' .. q, n)
if not ids then
    return {}
end
local payloads = redis.call('HMGET', ns .. ':' .. q .. '.msgs', unpack(ids))
local out, kept = {}, {}
for i, id in ipairs(ids) do
    local p = payloads[i]
    if p then
        kept[#kept + 1] = id
        out[#out + 1] = id
        out[#out + 1] = p
    end
end
if #kept > 0 then
    redis.call('SADD', ns .. ':__acks__.' .. worker .. '.' .. q, unpack(kept))
end
return out
