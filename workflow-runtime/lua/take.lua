-- take.lua: `take`, which hands a worker the messages at the head of a queue: the body of
-- fetch.lua, and what settle.lua does for the queues it pushed onto when the worker offered
-- room for more. Included after common.lua (and engine.lua); defines only locals.
-- KEYS, ARGV: see common.lua.
-- Returns: nothing (a library).
--
-- What is handed out: receipts whose payload is gone (acked elsewhere, a skipped workflow
-- node) are dropped, not added to the acks set. So are the messages of workflow nodes
-- (receipts of exactly the form "<node>:<nonce>...@<id>", see common.lua) whose workflow
-- stopped: their workflows are looked up in ns:__wf_stopped__, one ZMSCORE for the batch, and
-- only the hashes of those found are read: a message that is its node's current one marks the
-- node skipped, a stale copy (an earlier submission with the same id, a node done already) is
-- just dropped. Everything else is handed out as it is, without reading its workflow: a
-- running workflow's node is only ever advanced once however often its message runs, and the
-- messages of finished nodes are deleted when they finish.

-- The messages with these ids were popped from exact queue q: hands out those that may run.
-- Returns the number taken, or an error reply; writes only at its end (flush), so that on an
-- error nothing was written.
local function take_popped(worker, q, ids, out, known)
    local msgs = msgs_key(q)
    local payloads, ask, at = {}, {}, {}
    for i = 1, #ids do
        local p = nil
        if known then
            p = known[ids[i]]
        end
        if p == nil then
            ask[#ask + 1] = ids[i]
            at[#at + 1] = i
        else
            payloads[i] = p
        end
    end
    if #ask > 0 then
        local r = redis.pcall('HMGET', msgs, unpack(ask))
        if type(r) == 'table' and r.err then
            return redis.error_reply('WRONGTYPE take: ' .. msgs .. ' is not a hash')
        end
        typed(msgs, 'hash')
        for x = 1, #at do
            payloads[at[x]] = r[x]
        end
    end

    -- The workflows the receipts may name (what follows their first '@'; workflow ids have
    -- none), in order of first appearance; whether a receipt is exactly of a workflow node's
    -- form is only asked of those found stopped.
    local wid_of = {}
    local wids, seen = {}, {}
    for i = 1, #ids do
        if payloads[i] then
            local id = ids[i]
            local at = string.find(id, '@', 1, true)
            if at then
                local wid = string.sub(id, at + 1)
                wid_of[i] = wid
                if not seen[wid] then
                    seen[wid] = true
                    wids[#wids + 1] = wid
                end
            end
        end
    end
    local drop = {}
    if #wids > 0 then
        local sc = redis.pcall('ZMSCORE', STOPPED, unpack(wids))
        if type(sc) == 'table' and sc.err then
            return redis.error_reply('WRONGTYPE take: ' .. STOPPED .. ' is not a zset')
        end
        for x = 1, #wids do
            if sc[x] then
                local wid = wids[x]
                local w = wf(wid)
                local list, node_of, nonce_of = {}, {}, {}
                local fields = { 'state', 'nonce', 'v' }
                for i = 1, #ids do
                    if wid_of[i] == wid then
                        local node, nonce = parse_rid(ids[i])
                        if node then
                            list[#list + 1] = i
                            node_of[i], nonce_of[i] = node, nonce
                            fields[#fields + 1] = 's' .. node
                        end
                    end
                end
                -- A key of another type is no workflow: its messages are handed out as they are.
                local r = redis.pcall('HMGET', w.key, unpack(fields))
                if type(r) == 'table' and not r.err then
                    typed(w.key, 'hash')
                    local state, mine = r[1], r[2]
                    local err = layout_error(wid, r[3], state)
                    if err then
                        return redis.error_reply(err)
                    end
                    local mfields, stopped = {}, {}
                    for y, i in ipairs(list) do
                        if not state or nonce_of[i] ~= mine or r[3 + y] ~= 'q' then
                            drop[i] = true -- gone, an earlier one, or not waiting to run
                        elseif state ~= 'running' then
                            drop[i] = true
                            stopped[#stopped + 1] = i
                            mfields[#mfields + 1] = 'm' .. node_of[i]
                        end
                    end
                    -- The node whose current message this is is skipped (not a stale copy:
                    -- the node's current message may be running elsewhere).
                    if #stopped > 0 then
                        local ms = redis.call('HMGET', w.key, unpack(mfields))
                        for y, i in ipairs(stopped) do
                            local node = node_of[i]
                            if ids[i] == (ms[y] or (node .. ':' .. mine .. '@' .. wid)) then
                                set(w, 's' .. node, 'k')
                            end
                        end
                    end
                end
            end
        end
    end

    local acks = k('__acks__.' .. worker .. '.' .. q)
    local got = {}
    for i = 1, #ids do
        local id = ids[i]
        if payloads[i] then
            if drop[i] then
                hdel(msgs, id)
            else
                sadd(acks, id)
                got[#got + 1] = id
                got[#got + 1] = payloads[i]
            end
        end
    end
    flush()
    for x = 1, #got do
        out[#out + 1] = got[x]
    end
    return #got / 2
end

-- Moves up to n message ids from the head of exact queue q (X or X.DQ) into the acks set of
-- `worker` for q and appends receipt, payload, ... of those that may run to `out` (see
-- above). `known`, or nil, maps receipts to the payloads this script wrote to q's .msgs hash
-- (false: deleted), which are not read back. Flushes the write buffers.
-- Returns the number of messages handed out and the number of ids taken from the queue
-- (fewer than n: the queue is drained), or nil and an error reply; after an error the ids are
-- back where they were and nothing was written.
local function take(worker, q, n, out, known)
    local qkey = k(q)
    -- The first command; on a key that is not a list it fails, having changed nothing.
    local ids = redis.pcall('LPOP', qkey, n)
    if type(ids) == 'table' and ids.err then
        return nil, ids
    end
    typed(qkey, 'list')
    if not ids then
        return 0, 0
    end
    local ok, res = pcall(take_popped, worker, q, ids, out, known)
    if ok and type(res) == 'number' then
        return res, #ids
    end
    discard()
    local back = {}
    for i = #ids, 1, -1 do
        back[#back + 1] = ids[i]
    end
    redis.call('LPUSH', qkey, unpack(back))
    if ok then
        return nil, res
    elseif type(res) == 'table' and res.err then
        return nil, res
    end
    return nil, redis.error_reply('ERR take: ' .. tostring(res))
end
