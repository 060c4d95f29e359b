-- settle.lua: settles a batch of fetched messages in one atomic call (the hot path).
-- Included after common.lua and engine.lua.
-- KEYS: none (see common.lua).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id (whose acks sets hold the receipts).
-- ARGV[4..]: the settlements, 8 values each: kind, queue (as fetched: X or X.DQ), receipt,
--   workflow id ("" if none), node ("" if none), x1, x2, x3, where kind is
--   a  ack:         if the receipt left my acks set, drop the message
--   c  complete:    drop the message and complete the node (idempotent)
--   r  replace:     if it left my acks set: drop it and enqueue x3 (payload) with receipt x2
--                   on exact queue x1, recorded as the node's receipt if it is a workflow
--                   node; if that workflow stopped (or is gone: running workflows never
--                   expire) or the node is no longer waiting, enqueue nothing (and mark the
--                   node skipped if this was its current message); a message that is not
--                   the node's current one (a stale copy) changes no state
--   x  dead letter: if it left my acks set: move it to X.XQ (+ .msgs); fail the node with
--                   error x1 (a JSON string) if it is a workflow node: the given one, or,
--                   without one (the worker could not decode the message), the node its
--                   receipt names if the receipt is of a workflow node (see parse_rid)
--   q  requeue:     if it left my acks set and its payload exists, push it back to the end
-- Returns: { exact queues (X or X.DQ) onto which messages were pushed, { id, node, ... } of
--   workflows that stopped and have nodes left to skip (from that node on), ids of workflows
--   with tasks left to start } (see `report` in engine.lua).
-- Every settlement is safe to apply twice: the worker re-sends a batch after an error. A batch
-- that fails (a key of the wrong type, corrupt workflow data) changes nothing.

local WORKER = ARGV[3]
if type(WORKER) ~= 'string' or WORKER == '' then
    return redis.error_reply('ERR settle: bad worker id')
end

local KINDS = { a = true, c = true, r = true, x = true, q = true }
if (#ARGV - 3) % 8 ~= 0 then
    return redis.error_reply('ERR settle: settlements take 8 arguments each')
end
local items = {}
for i = 4, #ARGV, 8 do
    local it = {
        kind = ARGV[i], q = ARGV[i + 1], rid = ARGV[i + 2], wid = ARGV[i + 3],
        node = ARGV[i + 4], x1 = ARGV[i + 5], x2 = ARGV[i + 6], x3 = ARGV[i + 7],
    }
    if not KINDS[it.kind] then
        return redis.error_reply('ERR settle: unknown settlement kind ' .. it.kind)
    end
    if it.q == '' or it.rid == '' or string.sub(it.q, -3) == '.XQ' then
        return redis.error_reply('ERR settle: bad queue or receipt')
    end
    if it.kind == 'c' and it.wid == '' then
        return redis.error_reply('ERR settle: a completion needs its workflow')
    end
    if it.wid ~= '' and not string.match(it.node, '^[1-9]%d*$') and it.node ~= '0' then
        return redis.error_reply('ERR settle: bad node ' .. it.node)
    end
    if it.kind == 'r' and (it.x1 == '' or it.x2 == '' or string.sub(it.x1, -3) == '.XQ') then
        return redis.error_reply('ERR settle: bad replacement')
    end
    if it.kind == 'x' and string.sub(it.x1, 1, 1) ~= '"' then
        return redis.error_reply('ERR settle: the reason must be a JSON string')
    end
    items[#items + 1] = it
end

-- 1. Which receipts are in my acks sets: one SMISMEMBER per queue (nothing removed yet).
local groups, gorder = {}, {}
for _, it in ipairs(items) do
    local g = groups[it.q]
    if not g then
        g = { all = {}, seen = {}, member = {} }
        groups[it.q] = g
        gorder[#gorder + 1] = it.q
    end
    if not g.seen[it.rid] then
        g.seen[it.rid] = true
        g.all[#g.all + 1] = it.rid
    end
end
for _, q in ipairs(gorder) do
    local g = groups[q]
    g.acks = k('__acks__.' .. WORKER .. '.' .. q)
    local m = smismember(g.acks, g.all)
    for i, rid in ipairs(g.all) do
        g.member[rid] = m[i] == 1
    end
end

-- 2. Each settlement in order, reading what it needs; writes are buffered.
for _, it in ipairs(items) do
    local g = groups[it.q]
    local removed = g.member[it.rid]
    g.member[it.rid] = false -- a duplicate in the same batch finds it gone
    if removed then
        srem(g.acks, it.rid)
    end
    local msgs = k(it.q .. '.msgs')
    local kind = it.kind
    if kind == 'a' then
        if removed then
            hdel(msgs, it.rid)
        end
    elseif kind == 'c' then
        hdel(msgs, it.rid)
        complete(wf(it.wid), it.node, rid_nonce(it.rid))
    elseif kind == 'r' then
        if removed then
            hdel(msgs, it.rid)
            local keep = true
            if it.wid ~= '' then
                local w = wf(it.wid)
                local r = get(w, { 'state', 'nonce', 's' .. it.node, 'm' .. it.node })
                local s = r[3]
                -- Only the node's current message changes its state: a stale copy's retry
                -- is enqueued (nothing is lost) but not recorded.
                local current = it.rid == (r[4] or rid_of(w, it.node))
                if not r[1] or stale(w, rid_nonce(it.rid)) or s ~= 'q' then
                    -- Its workflow is gone, or this node is no longer waiting (done, failed,
                    -- skipped).
                    keep = false
                elseif r[1] ~= 'running' then
                    -- The workflow stopped while this node ran: its retry never starts.
                    keep = false
                    if current then
                        set(w, 's' .. it.node, 'k')
                    end
                elseif current then
                    set(w, 'm' .. it.node, it.x2)
                end
            end
            if keep then
                push(it.x1, it.x2, it.x3)
            end
        end
    elseif kind == 'x' then
        if removed then
            local payload = redis.call('HGET', msgs, it.rid)
            typed(msgs, 'hash')
            if payload then
                local xq = k((string.gsub(it.q, '%.DQ$', '')) .. '.XQ')
                zadd(xq, NOW_S, it.rid)
                hset(xq .. '.msgs', it.rid, payload)
                hdel(msgs, it.rid)
            end
        end
        if it.wid ~= '' then
            fail(wf(it.wid), it.node, it.x1, rid_nonce(it.rid))
        else
            -- Undecodable: its receipt still says which node of which submission it is.
            local node, nonce, wid = parse_rid(it.rid)
            if node then
                fail(wf(wid), node, it.x1, nonce)
            end
        end
    elseif removed then -- 'q'
        local there = redis.call('HEXISTS', msgs, it.rid) == 1
        typed(msgs, 'hash')
        if there then
            push(it.q, it.rid, nil)
        end
    end
end

-- 3. Check every key to be written, then write.
flush()
return report()
