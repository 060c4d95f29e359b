-- settle.lua: settles a batch of fetched messages in one atomic call (the hot path).
-- KEYS: none (see common.lua).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id (whose acks sets hold the receipts).
-- ARGV[4..]: the settlements, 8 values each: kind, queue (as fetched: X or X.DQ), receipt,
--   workflow id ("" if none), node ("" if none), x1, x2, x3, where kind is
--   a  ack:         if the receipt left my acks set, drop the message
--   c  complete:    drop the message and complete the node (idempotent)
--   r  replace:     if it left my acks set: drop it and enqueue x3 (payload) with receipt x2
--                   on exact queue x1, recorded as the node's receipt if it is a workflow
--                   node; if that workflow stopped, enqueue nothing and mark the node skipped
--   x  dead letter: if it left my acks set: move it to X.XQ (+ .msgs); fail the node with
--                   error x1 (a JSON string) if it is a workflow node
--   q  requeue:     if it left my acks set and its payload exists, push it back to the end
-- Returns: the exact queues (X or X.DQ) onto which messages were pushed.
-- Every settlement is safe to apply twice: the worker re-sends a batch after an error.

local WORKER = ARGV[3]

local KINDS = { a = true, c = true, r = true, x = true, q = true }
if (#ARGV - 3) % 8 ~= 0 then
    return redis.error_reply('settle: settlements take 8 arguments each')
end
local items = {}
for i = 4, #ARGV, 8 do
    if not KINDS[ARGV[i]] then
        return redis.error_reply('settle: unknown settlement kind ' .. ARGV[i])
    end
    items[#items + 1] = {
        kind = ARGV[i], q = ARGV[i + 1], rid = ARGV[i + 2], wid = ARGV[i + 3],
        node = ARGV[i + 4], x1 = ARGV[i + 5], x2 = ARGV[i + 6], x3 = ARGV[i + 7],
    }
end

-- 1. Take the receipts out of my acks sets: one SREM per queue; SMISMEMBER first when some
--    settlement needs to know whether its receipt was there.
local groups, gorder = {}, {}
for _, it in ipairs(items) do
    local g = groups[it.q]
    if not g then
        g = { all = {}, need = {}, seen = {}, removed = {} }
        groups[it.q] = g
        gorder[#gorder + 1] = it.q
    end
    if not g.seen[it.rid] then
        g.seen[it.rid] = true
        g.all[#g.all + 1] = it.rid
        if it.kind ~= 'c' then
            g.need[#g.need + 1] = it.rid
        end
    end
end
for _, q in ipairs(gorder) do
    local g = groups[q]
    local acks = k('__acks__.' .. WORKER .. '.' .. q)
    if #g.need == 0 then
        call_chunked('SREM', acks, g.all)
    elseif #g.all == 1 then
        g.removed[g.all[1]] = redis.call('SREM', acks, g.all[1]) == 1
    else
        local m = read_chunked('SMISMEMBER', acks, g.need)
        for i, rid in ipairs(g.need) do
            g.removed[rid] = m[i] == 1
        end
        call_chunked('SREM', acks, g.all)
    end
end

-- 2. Each settlement in order; payloads are deleted at the end, one HDEL per queue.
local dels, dorder = {}, {}
local function hdel(q, rid)
    if not dels[q] then
        dels[q] = {}
        dorder[#dorder + 1] = q
    end
    dels[q][#dels[q] + 1] = rid
end

for _, it in ipairs(items) do
    local g = groups[it.q]
    local removed = g.removed[it.rid] == true
    g.removed[it.rid] = false -- a duplicate in the same batch finds it gone
    local kind = it.kind
    if kind == 'a' then
        if removed then
            hdel(it.q, it.rid)
        end
    elseif kind == 'c' then
        hdel(it.q, it.rid)
        complete(wf(it.wid), tonumber(it.node))
    elseif kind == 'r' then
        if removed then
            hdel(it.q, it.rid)
            local keep = true
            if it.wid ~= '' then
                local w = wf(it.wid)
                local r = get(w, { 'state', 's' .. it.node })
                local st = r[1]
                if st and st ~= 'running' then
                    -- The workflow stopped while this node ran: its retry never starts.
                    keep = false
                    if r[2] == 'q' then
                        set(w, 's' .. it.node, 'k')
                    end
                elseif st then
                    set(w, 'm' .. it.node, it.x2)
                end
            end
            if keep then
                push(it.x1, it.x2, it.x3)
            end
        end
    elseif kind == 'x' then
        if removed then
            local payload = redis.call('HGET', k(it.q .. '.msgs'), it.rid)
            if payload then
                local xq = q_name(it.q) .. '.XQ'
                redis.call('ZADD', k(xq), NOW_S, it.rid)
                redis.call('HSET', k(xq .. '.msgs'), it.rid, payload)
                hdel(it.q, it.rid)
            end
        end
        if it.wid ~= '' then
            fail(wf(it.wid), tonumber(it.node), it.x1)
        end
    else -- 'q'
        if removed and redis.call('HEXISTS', k(it.q .. '.msgs'), it.rid) == 1 then
            push(it.q, it.rid, nil)
        end
    end
end

-- 3. Write back.
for _, q in ipairs(dorder) do
    call_chunked('HDEL', k(q .. '.msgs'), dels[q])
end
flush_wf()
flush_out()
return WOKE_ORDER
