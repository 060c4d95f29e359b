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
local NARGV = #ARGV
if (NARGV - 3) % 8 ~= 0 then
    return redis.error_reply('ERR settle: settlements take 8 arguments each')
end
-- Settlements are read from ARGV where they are (settlement i at ARGV[i .. i + 7]): no table
-- per settlement. Validated all before anything is read or written.
for i = 4, NARGV, 8 do
    local kind, q, rid, wid = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if not KINDS[kind] then
        return redis.error_reply('ERR settle: unknown settlement kind ' .. kind)
    end
    if q == '' or rid == '' or string.sub(q, -3) == '.XQ' then
        return redis.error_reply('ERR settle: bad queue or receipt')
    end
    if kind == 'c' and wid == '' then
        return redis.error_reply('ERR settle: a completion needs its workflow')
    end
    local node = ARGV[i + 4]
    if wid ~= '' and node ~= '0' and not string.match(node, '^[1-9]%d*$') then
        return redis.error_reply('ERR settle: bad node ' .. node)
    end
    if kind == 'r' then
        local x1 = ARGV[i + 5]
        if x1 == '' or ARGV[i + 6] == '' or string.sub(x1, -3) == '.XQ' then
            return redis.error_reply('ERR settle: bad replacement')
        end
    elseif kind == 'x' and string.sub(ARGV[i + 5], 1, 1) ~= '"' then
        return redis.error_reply('ERR settle: the reason must be a JSON string')
    end
end

-- 1. Which receipts are in my acks sets: one SMISMEMBER per queue (nothing removed yet).
-- member[rid]: nil until asked, then whether it is (still) in the acks set.
local groups, gorder = {}, {}
for i = 5, NARGV, 8 do
    local q, rid = ARGV[i], ARGV[i + 1]
    local g = groups[q]
    if not g then
        g = { all = {}, member = {}, msgs = msgs_key(q) }
        groups[q] = g
        gorder[#gorder + 1] = q
    end
    local member = g.member
    if member[rid] == nil then
        member[rid] = false
        local all = g.all
        all[#all + 1] = rid
    end
end
for gi = 1, #gorder do
    local q = gorder[gi]
    local g = groups[q]
    g.acks = k('__acks__.' .. WORKER .. '.' .. q)
    local all, member = g.all, g.member
    local m = smismember(g.acks, all)
    for x = 1, #all do
        member[all[x]] = m[x] == 1
    end
end

-- 1b. The fields the completions read, with one HMGET per workflow for all of its
-- completions in this batch (instead of one per completion): state, nonce and ps (and v,
-- read by the first read of a workflow), and each node's state and next code. Reads only:
-- nothing has been written yet, so what `complete` then finds in the cache is what it would
-- have read itself.
local cfields, corder = {}, {}
for i = 4, NARGV, 8 do
    if ARGV[i] == 'c' then
        local w = wf(ARGV[i + 3])
        local fl = cfields[w]
        if not fl then
            fl = { 'state', 'nonce', 'ps' }
            cfields[w] = fl
            corder[#corder + 1] = w
        end
        local node = ARGV[i + 4]
        fl[#fl + 1] = 's' .. node
        fl[#fl + 1] = 'x' .. node
    end
end
for ci = 1, #corder do
    local w = corder[ci]
    get(w, cfields[w])
end

-- 2. Each settlement in order, reading what it needs; writes are buffered.
for i = 4, NARGV, 8 do
    local kind, q, rid, wid = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local g = groups[q]
    local removed = g.member[rid]
    g.member[rid] = false -- a duplicate in the same batch finds it gone
    if removed then
        srem(g.acks, rid)
    end
    local msgs = g.msgs
    if kind == 'a' then
        if removed then
            hdel(msgs, rid)
        end
    elseif kind == 'c' then
        hdel(msgs, rid)
        complete(wf(wid), ARGV[i + 4], rid_nonce(rid))
    elseif kind == 'r' then
        if removed then
            hdel(msgs, rid)
            local keep = true
            if wid ~= '' then
                local node = ARGV[i + 4]
                local w = wf(wid)
                local r = get(w, { 'state', 'nonce', 's' .. node, 'm' .. node })
                local s = r[3]
                -- Only the node's current message changes its state: a stale copy's retry
                -- is enqueued (nothing is lost) but not recorded.
                local current = rid == (r[4] or rid_of(w, node))
                if not r[1] or stale(w, rid_nonce(rid)) or s ~= 'q' then
                    -- Its workflow is gone, or this node is no longer waiting (done, failed,
                    -- skipped).
                    keep = false
                elseif r[1] ~= 'running' then
                    -- The workflow stopped while this node ran: its retry never starts.
                    keep = false
                    if current then
                        set(w, 's' .. node, 'k')
                    end
                elseif current then
                    set(w, 'm' .. node, ARGV[i + 6])
                end
            end
            if keep then
                push(ARGV[i + 5], ARGV[i + 6], ARGV[i + 7])
            end
        end
    elseif kind == 'x' then
        local x1 = ARGV[i + 5]
        if removed then
            local payload = redis.call('HGET', msgs, rid)
            typed(msgs, 'hash')
            if payload then
                local xq = k((string.gsub(q, '%.DQ$', '')) .. '.XQ')
                zadd(xq, NOW_S, rid)
                hset(xq .. '.msgs', rid, payload)
                hdel(msgs, rid)
            end
        end
        if wid ~= '' then
            fail(wf(wid), ARGV[i + 4], x1, rid_nonce(rid))
        else
            -- Undecodable: its receipt still says which node of which submission it is.
            local node, nonce, pwid = parse_rid(rid)
            if node then
                fail(wf(pwid), node, x1, nonce)
            end
        end
    elseif removed then -- 'q'
        local there = redis.call('HEXISTS', msgs, rid) == 1
        typed(msgs, 'hash')
        if there then
            push(q, rid, nil)
        end
    end
end

-- 3. Check every key to be written, then write.
flush()
return report()
