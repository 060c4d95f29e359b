-- settle.lua: settles a batch of fetched messages in one atomic call (the hot path), and hands
-- the worker the next messages of the queues it pushed onto, if the worker has room for them.
-- Included after common.lua, engine.lua and take.lua.
-- KEYS: none (see common.lua).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id (whose acks sets hold the receipts).
-- ARGV[4]: r, the number of queues the worker has room in; ARGV[5 .. 4 + 2r]: queue, room, ...
--   (exact ready queues, not X.DQ; room 1..1000): after settling, for each of these queues
--   that this call pushed onto, up to `room` messages are taken for the worker (as fetch.lua
--   does; a message that this call pushed onto a queue that was empty goes to the worker
--   directly, without passing through the queue).
-- ARGV[5 + 2r ..]: the settlements, 8 values each: kind, queue (as fetched: X or X.DQ),
--   receipt, workflow id ("" if none), node ("" if none), x1, x2, x3, where kind is
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
-- Returns: { exact queues (X or X.DQ) onto which messages were pushed and that may still hold
--   some (not those the worker was handed everything of), { id, node, ... } of workflows that
--   stopped and have nodes left to skip (from that node on), ids of workflows with tasks left
--   to start (see `report` in engine.lua), queue, receipt, payload, ... of the messages handed
--   to the worker (now in its acks sets, as if fetched), the queues of ARGV[5..] that this call
--   left empty }.
-- Every settlement is safe to apply twice: the worker re-sends a batch after an error. A batch
-- that fails (a key of the wrong type, corrupt workflow data) changes nothing. Taking messages
-- comes after the settlements are written and cannot make the call fail: if it fails, the
-- messages stay on their queue, which is reported as pushed onto.

local WORKER = ARGV[3]
if type(WORKER) ~= 'string' or WORKER == '' then
    return redis.error_reply('ERR settle: bad worker id')
end

local KINDS = { a = true, c = true, r = true, x = true, q = true }
local NARGV = #ARGV
local NROOM = tonumber(ARGV[4])
if not NROOM or NROOM < 0 or NROOM ~= math.floor(NROOM) or 4 + 2 * NROOM > NARGV then
    return redis.error_reply('ERR settle: bad room count')
end
local ROOM, ROOM_ORDER = {}, {}
for i = 5, 4 + 2 * NROOM, 2 do
    local q, room = ARGV[i], tonumber(ARGV[i + 1])
    if q == '' or string.find(q, '%.[DX]Q$') or not room or room < 1 or room > 1000
        or room ~= math.floor(room) then
        return redis.error_reply('ERR settle: bad room ' .. q)
    end
    if not ROOM[q] then
        ROOM_ORDER[#ROOM_ORDER + 1] = q
    end
    ROOM[q] = room
end
local FIRST = 5 + 2 * NROOM -- the first settlement's first argument
if (NARGV - FIRST + 1) % 8 ~= 0 then
    return redis.error_reply('ERR settle: settlements take 8 arguments each')
end
-- Settlements are read from ARGV where they are (settlement i at ARGV[i .. i + 7]): no table
-- per settlement. Validated all before anything is read or written.
local QOK = {} -- queues seen valid
for i = FIRST, NARGV, 8 do
    local kind, q, rid, wid = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if not KINDS[kind] then
        return redis.error_reply('ERR settle: unknown settlement kind ' .. kind)
    end
    if not QOK[q] then
        if q == '' or string.sub(q, -3) == '.XQ' then
            return redis.error_reply('ERR settle: bad queue ' .. q)
        end
        QOK[q] = true
    end
    if rid == '' then
        return redis.error_reply('ERR settle: empty receipt')
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
for i = FIRST + 1, NARGV, 8 do
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
for i = FIRST, NARGV, 8 do
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
for i = FIRST, NARGV, 8 do
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

-- 3. The worker's next messages, from the queues it has room in that were pushed onto. A
-- queue that was empty gets nothing of this call's messages for it: they go straight to the
-- worker (their payloads are written, and their receipts to the worker's acks set, as if
-- fetched), in order, up to the room.
local given, direct = {}, {}
for _, q in ipairs(ROOM_ORDER) do
    local pushed = L[k(q)]
    -- (Not when this call stopped a workflow: a node it started may be one the sweep did not
    -- reach; `take` checks the stopped workflows.)
    if pushed and WOKE[q] and not STOPPED_NOW then
        local len = redis.pcall('LLEN', k(q))
        if type(len) == 'number' then
            typed(k(q), 'list')
            if len == 0 then
                local hm = H[msgs_key(q)]
                local acks = k('__acks__.' .. WORKER .. '.' .. q)
                local rest, n, room = {}, 0, ROOM[q]
                for _, rid in ipairs(pushed.order) do
                    local p = hm and hm.v[rid]
                    if #rest == 0 and n < room and p then
                        sadd(acks, rid)
                        given[#given + 1] = q
                        given[#given + 1] = rid
                        given[#given + 1] = p
                        n = n + 1
                    else
                        rest[#rest + 1] = rid
                    end
                end
                pushed.order = rest
                direct[q] = #rest == 0 and 'all' or 'some'
            end
        end
    end
end
-- Payloads this call writes, by queue, for `take` not to read them back.
local known = {}
for _, q in ipairs(ROOM_ORDER) do
    local hm = H[msgs_key(q)]
    known[q] = hm and hm.v
end

-- 4. Check every key to be written, then write.
flush()

-- 5. Queues that were not empty: their first messages, after the write.
local drained, drained_list = {}, {}
for _, q in ipairs(ROOM_ORDER) do
    if direct[q] == 'all' then
        drained[q] = true
    elseif WOKE[q] and not direct[q] then
        local room, got = ROOM[q], {}
        local n, popped = take(WORKER, q, room, got, known[q])
        if n and popped < room then
            drained[q] = true
        end
        for x = 1, #got, 2 do
            given[#given + 1] = q
            given[#given + 1] = got[x]
            given[#given + 1] = got[x + 1]
        end
    end
    if drained[q] then
        drained_list[#drained_list + 1] = q
    end
end
local out = report()
local woke = {}
for _, q in ipairs(out[1]) do
    if not drained[q] then
        woke[#woke + 1] = q
    end
end
out[1] = woke
out[4] = given
out[5] = drained_list
return out
