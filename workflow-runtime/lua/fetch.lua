-- fetch.lua: takes up to n messages from a queue for this worker (dramatiq's `fetch`).
-- Included after common.lua, engine.lua and take.lua.
-- KEYS: none; the keys are ns:Q, ns:Q.msgs, ns:__acks__.<worker>.Q (and ns:__heartbeats__,
--   ns:__wf_stopped__), built from ARGV, and the hashes of stopped workflows whose messages it
--   takes.
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id; ARGV[4]: queue (X or X.DQ);
-- ARGV[5]: how many at most (1..1000); ARGV[6]: "1" to also record this worker's heartbeat.
-- Returns: a flat array receipt1, payload1, receipt2, payload2, ... of the messages that may
--   run (see take.lua for those dropped). Nothing marks a node running: whether a worker
--   holds its message is read from the acks sets when the status is asked for.
-- Cost: an empty queue is one LPOP. Types are proven by the commands themselves, not asked
-- with TYPE: the LPOP (a list), the HMGET of the payloads (a hash), the SADD to the acks set
-- (the first write). If anything fails after the LPOP (a key of the wrong type, a stopped
-- workflow of an unknown layout), the ids are pushed back where they were and the script
-- returns the error, having changed nothing.

local worker, q = ARGV[3], ARGV[4]
local n = tonumber(ARGV[5])
if type(worker) ~= 'string' or worker == '' or type(q) ~= 'string' or q == '' then
    return redis.error_reply('ERR fetch: bad worker or queue')
end
if not n or n < 1 or n > 1000 or n ~= math.floor(n) then
    return redis.error_reply('ERR fetch: count must be 1..1000')
end
if ARGV[6] == '1' then
    local hb = k('__heartbeats__')
    expect(hb, 'zset')
    zadd(hb, NOW_S, worker)
end
local out = {}
local got, err = take(worker, q, n, out, nil)
if not got then
    return err
end
flush() -- the heartbeat, if take wrote nothing
return out
