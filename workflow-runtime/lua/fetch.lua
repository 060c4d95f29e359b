-- fetch.lua: takes up to n messages from a queue for this worker (dramatiq's `fetch`).
-- Included after common.lua.
-- KEYS: none; the keys are ns:Q, ns:Q.msgs, ns:__acks__.<worker>.Q (and ns:__heartbeats__),
--   built from ARGV, and the hashes of the workflows whose messages it takes.
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id; ARGV[4]: queue (X or X.DQ);
-- ARGV[5]: how many at most (1..1000); ARGV[6]: "1" to also record this worker's heartbeat.
-- Returns: a flat array receipt1, payload1, receipt2, payload2, ... Receipts whose payload is
--   gone (acked elsewhere, or a skipped workflow node) are dropped, not added to acks. So are
--   the messages of workflow nodes (receipts of exactly the form "<node>:<nonce>...@<id>",
--   see common.lua) that must not run: their workflow stopped (a node whose current message
--   this is is marked skipped), is gone (running workflows never expire), is an earlier one
--   with the same id, or the node is not started or done already. Messages with any other
--   receipt are handed out as they are. Nothing marks a node running: whether a worker holds
--   its message is read from the acks sets when the status is asked for.
-- Cost: an empty queue is one LPOP. Types are proven by the commands themselves, not asked
-- with TYPE: the LPOP (a list), the HMGET of the payloads (a hash), the SADD to the acks set
-- (the first write). If anything fails after the LPOP (a key of the wrong type, a workflow
-- of an unknown layout), the ids are pushed back where they were and the script returns the
-- error, having changed nothing.

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
local beat = ARGV[6] == '1'

-- The first command; on a key that is not a list it fails, having changed nothing.
local ids = redis.pcall('LPOP', k(q), n)
if type(ids) == 'table' and ids.err then
    return ids
end
if not ids then
    if beat then
        expect(hb, 'zset')
        zadd(hb, NOW_S, worker)
        flush()
    end
    return {}
end

-- From here on, a failure puts the ids back first.
local function undo(err)
    local back = {}
    for i = #ids, 1, -1 do
        back[#back + 1] = ids[i]
    end
    redis.call('LPUSH', k(q), unpack(back))
    return redis.error_reply(err)
end

local payloads = redis.pcall('HMGET', msgs, unpack(ids))
if type(payloads) == 'table' and payloads.err then
    return undo('WRONGTYPE fetch: ' .. msgs .. ' is not a hash')
end
typed(msgs, 'hash')

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
    local fields = { 'state', 'nonce', 'v' }
    for _, i in ipairs(g) do
        fields[#fields + 1] = 's' .. node_of[i]
    end
    -- A key of another type is no workflow: its messages are handed out as they are.
    local r = redis.pcall('HMGET', w.key, unpack(fields))
    if type(r) == 'table' and not r.err then
        typed(w.key, 'hash')
        local state, mine, v = r[1], r[2], r[3]
        local err = layout_error(wid, v, state)
        if err then
            return undo(err)
        end
        local mfields, stopped = {}, {}
        for x, i in ipairs(g) do
            local s = r[3 + x]
            if not state or nonce_of[i] ~= mine then
                drop[i] = true
            elseif s ~= 'q' then
                drop[i] = true -- done, failed, skipped, or never started
            elseif state ~= 'running' then
                drop[i] = true
                stopped[#stopped + 1] = i
                mfields[#mfields + 1] = 'm' .. node_of[i]
            end
        end
        -- A stopped workflow's node whose current message this is is skipped (not a stale
        -- copy: the node's current message may be running elsewhere).
        if #stopped > 0 then
            local ms = redis.call('HMGET', w.key, unpack(mfields))
            for x, i in ipairs(stopped) do
                local node = node_of[i]
                if ids[i] == (ms[x] or (node .. ':' .. mine .. '@' .. wid)) then
                    set(w, 's' .. node, 'k')
                end
            end
        end
    end
end

local out, taken = {}, {}
for i, id in ipairs(ids) do
    if payloads[i] then
        if drop[i] then
            hdel(msgs, id)
        else
            taken[#taken + 1] = id
            out[#out + 1] = id
            out[#out + 1] = payloads[i]
        end
    end
end
if beat then
    local t = key_type(hb)
    if t ~= 'none' and t ~= 'zset' then
        return undo('WRONGTYPE ' .. hb .. ' holds a ' .. t .. ', not a zset')
    end
    zadd(hb, NOW_S, worker)
end
-- The first write: on a key that is not a set it fails, having written nothing.
if #taken > 0 then
    local r = redis.pcall('SADD', acks, unpack(taken))
    if type(r) == 'table' and r.err then
        return undo('WRONGTYPE fetch: ' .. acks .. ' is not a set')
    end
end
-- The keys written now were all proven of the right type above.
flush()
return out
