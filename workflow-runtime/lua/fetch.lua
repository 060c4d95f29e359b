-- fetch.lua: takes up to n messages from a queue for this worker (dramatiq's `fetch`).
-- Included after common.lua.
-- KEYS: none; the keys are ns:Q, ns:Q.msgs, ns:__acks__.<worker>.Q (and ns:__heartbeats__),
--   built from ARGV, and the hashes of the workflows whose messages it takes.
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id; ARGV[4]: queue (X or X.DQ);
-- ARGV[5]: how many at most (1..1000); ARGV[6]: "1" to also record this worker's heartbeat.
-- Returns: a flat array receipt1, payload1, receipt2, payload2, ... Receipts whose payload is
--   gone (acked elsewhere, or a skipped workflow node) are dropped, not added to acks. So are
--   the messages of workflow nodes that must not run: their workflow stopped (the node is
--   marked skipped), is gone (running workflows never expire), is an earlier one with the same
--   id, or the node is done already. A node fetched from X (not X.DQ) is marked running.
-- The types of the keys written are checked before the LPOP: the script fails before its
-- first write or not at all.

local worker, q = ARGV[3], ARGV[4]
local n = tonumber(ARGV[5])
if type(worker) ~= 'string' or worker == '' or type(q) ~= 'string' or q == '' then
    return redis.error_reply('ERR fetch: bad worker or queue')
end
if not n or n < 1 or n > 1000 or n ~= math.floor(n) then
    return redis.error_reply('ERR fetch: count must be 1..1000')
end
local acks = k('__acks__.' .. worker .. '.' .. q)
local msgs = k(q .. '.msgs')
local hb = k('__heartbeats__')
local delayed = string.sub(q, -3) == '.DQ'
expect(acks, 'set')
expect(msgs, 'hash')
if ARGV[6] == '1' then
    expect(hb, 'zset')
    zadd(hb, NOW_S, worker)
end

-- The first write; on a key that is not a list it fails, having written nothing.
local ids = redis.call('LPOP', k(q), n)
if not ids then
    flush()
    return {}
end
local payloads = redis.call('HMGET', msgs, unpack(ids))

-- Messages of workflow nodes, by workflow.
local node_of, nonce_of = {}, {}
local byw, worder = {}, {}
for i, id in ipairs(ids) do
    if payloads[i] then
        local node, nonce, wid = parse_rid(id)
        if node then
            node_of[i], nonce_of[i] = node, nonce
            local g = byw[wid]
            if not g then
                g = {}
                byw[wid] = g
                worder[#worder + 1] = wid
            end
            g[#g + 1] = i
        end
    end
end
local drop = {}
for _, wid in ipairs(worder) do
    local g = byw[wid]
    local w = wf(wid)
    local fields = { 'state', 'nonce' }
    for _, i in ipairs(g) do
        fields[#fields + 1] = 's' .. node_of[i]
    end
    -- pcall: a key of another type must not fail the fetch after its LPOP; its messages are
    -- handed out as they are.
    local r = redis.pcall('HMGET', w.key, unpack(fields))
    if type(r) == 'table' and not r.err then
        typed(w.key, 'hash')
        local state, mine = r[1], r[2]
        for x, i in ipairs(g) do
            local node, s = node_of[i], r[2 + x]
            if w.v['s' .. node] ~= nil then
                s = w.v['s' .. node] -- a second copy in this batch sees the first one's mark
            end
            if not state or (nonce_of[i] and mine and nonce_of[i] ~= mine) then
                drop[i] = true
            elseif state ~= 'running' then
                drop[i] = true
                if s == 'q' or s == 'r' then
                    set(w, 's' .. node, 'k')
                end
            elseif s ~= 'q' and s ~= 'r' then
                drop[i] = true -- done, failed, or never started: not this node's message
            elseif s == 'q' and not delayed then
                set(w, 's' .. node, 'r')
            end
        end
    end
end

local out = {}
for i, id in ipairs(ids) do
    if payloads[i] then
        if drop[i] then
            hdel(msgs, id)
        else
            sadd(acks, id)
            out[#out + 1] = id
            out[#out + 1] = payloads[i]
        end
    end
end
flush()
return out
