-- engine.lua: the workflow engine (workflow/engine.rs) in Lua, used by the scripts that advance
-- or stop workflows (settle, submit, resume, cancel, sweep); part of the library after
-- common.lua (see there); it defines only locals and touches nothing itself. The layout of a
-- workflow's hash is described in common.lua.
-- KEYS, ARGV: see common.lua.
-- Returns: nothing (a library).

-- Task nodes one script call starts at most (about 0.1 s), plus one of each workflow that
-- would otherwise be left with tasks to start and none started by this call.
local START_BUDGET = 5000
local SWEEP_SLICE = 5000 -- nodes of a stopped workflow one script call looks at at most

-- "a-b,c": the nodes after the first `skip`, at most max; and whether that was all of them.
local function slice_nodes(spec, skip, max)
    local out = {}
    for part in string.gmatch(spec, '[^,]+') do
        local a, b = string.match(part, '^(%d+)%-(%d+)$')
        if a then
            a, b = tonumber(a), tonumber(b)
        else
            a = tonumber(part)
            b = a
        end
        if not a or b < a then
            raise('ERR corrupt node ranges: ' .. spec)
        end
        local len = b - a + 1
        if skip >= len then
            skip = skip - len
        else
            local x = a + skip
            skip = 0
            while x <= b do
                if #out >= max then
                    return out, false
                end
                out[#out + 1] = x
                x = x + 1
            end
        end
    end
    return out, true
end

-- The message of a template: returns its exact queue and its JSON. `extra` is more option
-- members ("\"key\":value"), or nil.
local function build(tpl, rid, extra)
    local queue, delay, mid, body = string.match(tpl, '^([^\t]+)\t(%d+)\t([^\t]*)\t(.*)$')
    if not body then
        raise('ERR corrupt message template')
    end
    delay = tonumber(delay)
    local qn = queue
    local opts = '"redis_message_id":"' .. rid .. '"'
    if delay > 0 then
        qn = queue .. '.DQ'
        opts = opts .. ',"eta":' .. string.format('%.0f', NOW + delay)
    end
    if extra then
        opts = opts .. ',' .. extra
    end
    if string.sub(body, -1) ~= '{' then
        opts = ',' .. opts
    end
    return qn, '{"queue_name":"' .. qn .. '",' .. body .. opts .. '},"message_id":' .. mid
        .. ',"message_timestamp":' .. NOW_S .. '}'
end

-- The workflow's nonce (false if it has none).
local function nonce_of(w)
    if w.nonce == nil then
        w.nonce = get1(w, 'nonce')
    end
    return w.nonce
end

-- Whether a receipt's nonce says it belongs to an earlier workflow with the same id.
local function stale(w, nonce)
    local mine = nonce_of(w)
    return nonce ~= nil and mine ~= false and nonce ~= mine
end

-- The receipt of a node's first message (n: the node as a string), or of a handler ("s",
-- "f").
local function rid_of(w, n)
    if not w.rid_tail then
        local nonce = nonce_of(w)
        if nonce then
            w.rid_tail = ':' .. nonce .. '@' .. w.id
        else
            w.rid_tail = '@' .. w.id
        end
    end
    return n .. w.rid_tail
end

-- Actor and queue of node n.
local function meta(w, n)
    if not w.meta then
        local r = get(w, { 'an', 'ai', 'n' })
        local count = tonumber(r[3])
        if not r[1] or not r[2] or not count or count < 1 or #r[2] % count ~= 0 then
            raise('ERR workflow ' .. w.id .. ': corrupt an/ai')
        end
        w.meta = cjson.decode(r[1])
        w.ai = r[2]
        w.aw = #r[2] / count
    end
    local pair = w.meta[(tonumber(string.sub(w.ai, n * w.aw + 1, (n + 1) * w.aw)) or -1) + 1]
    if type(pair) ~= 'table' or type(pair[1]) ~= 'string' or type(pair[2]) ~= 'string' then
        raise('ERR workflow ' .. w.id .. ': no actor for node ' .. n)
    end
    return pair[1], pair[2]
end

-- Start sets not fully started yet, as a list of "<started>:<ranges>".
local function pending(w)
    if not w.pl then
        w.pl = {}
        local ps = get1(w, 'ps')
        if ps then
            for e in string.gmatch(ps, '[^;]+') do
                w.pl[#w.pl + 1] = e
            end
        end
    end
    return w.pl
end

-- Writes `ps` back, and keeps the workflow's entry in the index of pending workflows (scored
-- by now: its last progress) while it has start sets left.
local function save_pending(w)
    local pl = pending(w)
    if #pl > 0 then
        set(w, 'ps', table.concat(pl, ';'))
        zadd(PENDING, NOW_S, w.id)
    elseif get1(w, 'ps') then
        set(w, 'ps', false)
        zrem(PENDING, w.id)
    end
end

local START_LEFT

-- Starts task nodes (ranges spec, after the first `skip`): enqueues their messages (delayed
-- ones on Q.DQ with eta), at most START_LEFT, but at least one if this call started no task
-- of this workflow yet (so that a task in flight carries the rest); the rest is kept in `ps`.
local function start(w, spec, skip)
    local max = START_LEFT
    if max < 1 and not w.started then
        max = 1
    end
    local nodes, all = slice_nodes(spec, skip, max)
    START_LEFT = START_LEFT - #nodes
    if #nodes > 0 then
        w.started = true
        local names, fields = {}, {}
        for i, n in ipairs(nodes) do
            local name = nstr(n)
            names[i] = name
            fields[i] = 't' .. name
        end
        local tpls = get(w, fields)
        for i, name in ipairs(names) do
            if not tpls[i] then
                raise('ERR workflow ' .. w.id .. ': task ' .. name .. ' has no template')
            end
            local rid = rid_of(w, name)
            local q, payload = build(tpls[i], rid, nil)
            push(q, rid, payload)
            set(w, 's' .. name, 'q')
        end
    end
    if not all then
        local pl = pending(w)
        pl[#pl + 1] = (skip + #nodes) .. ':' .. spec
        save_pending(w)
    end
end

-- Starts the one task of a code "S<k>\t<template>", which carries its template. Always (it
-- counts against the budget but is never left for later: its template is nowhere else).
local function start_one(w, code)
    local name, tpl = string.match(code, '^S(%d+)\t(.+)$')
    if not name then
        raise('ERR workflow ' .. w.id .. ': corrupt next code ' .. string.sub(code, 1, 20))
    end
    START_LEFT = START_LEFT - 1
    w.started = true
    local rid = rid_of(w, name)
    local q, payload = build(tpl, rid, nil)
    push(q, rid, payload)
    set(w, 's' .. name, 'q')
end

-- Goes on starting the pending start sets of a running workflow, within the budget (but at
-- least one task if this call started none of it yet).
local function resume(w)
    local todo = pending(w)
    if #todo == 0 or (START_LEFT < 1 and w.started) then
        return
    end
    w.pl = {}
    for _, e in ipairs(todo) do
        local skip, spec = string.match(e, '^(%d+):(.+)$')
        if not skip then
            raise('ERR workflow ' .. w.id .. ': corrupt ps')
        end
        if START_LEFT > 0 or not w.started then
            start(w, spec, tonumber(skip))
        else
            w.pl[#w.pl + 1] = e
        end
    end
    save_pending(w)
end

local SWEEP_LEFT

-- Workers with a heartbeat (live ones and dead ones not forgotten yet), read once per call.
local HB_WORKERS

-- Whether this call stopped a workflow (failed or cancelled it).
local STOPPED_NOW

RESET[#RESET + 1] = function()
    START_LEFT, SWEEP_LEFT, HB_WORKERS, STOPPED_NOW = START_BUDGET, SWEEP_SLICE, nil, false
end

-- Which of the receipts `rids` (messages of canonical queue q) a worker took from q and has
-- not settled: they are in its acks set `ns:__acks__.<worker>.q`. Returns rid -> true.
-- (A message a worker holds from q.DQ, waiting for its eta, is not taken.) Per worker with a
-- heartbeat: its acks set's size, then the set read whole if it is smaller than rids, else
-- asked about rids; so the cost is at most the smaller of the two. An acks key of another
-- type counts as empty.
local function taken(q, rids)
    local out = {}
    if #rids == 0 then
        return out
    end
    if not HB_WORKERS then
        local r = redis.pcall('ZRANGE', k('__heartbeats__'), 0, -1)
        if type(r) == 'table' and not r.err then
            HB_WORKERS = r
        else
            HB_WORKERS = {}
        end
    end
    local wanted
    for _, worker in ipairs(HB_WORKERS) do
        local acks = k('__acks__.' .. worker .. '.' .. q)
        local card = redis.pcall('SCARD', acks)
        if type(card) == 'number' and card > 0 then
            if card <= #rids then
                if not wanted then
                    wanted = {}
                    for _, rid in ipairs(rids) do
                        wanted[rid] = true
                    end
                end
                for _, m in ipairs(redis.call('SMEMBERS', acks)) do
                    if wanted[m] then
                        out[m] = true
                    end
                end
            else
                local i = 1
                while i <= #rids do
                    local j = math.min(i + CHUNK - 1, #rids)
                    local m = redis.call('SMISMEMBER', acks, unpack(rids, i, j))
                    for x = 1, #m do
                        if m[x] == 1 then
                            out[rids[i + x - 1]] = true
                        end
                    end
                    i = j + 1
                end
            end
        end
    end
    return out
end

-- The workflow stopped: from node `from` on, nodes still queued are skipped and their
-- messages dropped (fetch drops ids whose payload is gone), at most SWEEP_LEFT nodes looked
-- at; w.sweep_from is where to go on (nil: done, else a node, 0 included). Nodes whose
-- current message a worker took are left: they run to their end. Messages left behind are
-- dropped by fetch anyway.
local function sweep(w, from)
    local n = tonumber(get(w, { 'n' })[1])
    if not n then
        raise('ERR workflow ' .. w.id .. ': corrupt n')
    end
    local to = math.min(n, from + math.max(SWEEP_LEFT, 0))
    if to > from then
        SWEEP_LEFT = SWEEP_LEFT - (to - from)
        local names, fields = {}, {}
        for i = from, to - 1 do
            local name = nstr(i)
            names[#names + 1] = name
            fields[#fields + 1] = 's' .. name
        end
        local st = get(w, fields)
        local queued, mf = {}, {}
        for x, s in ipairs(st) do
            if s == 'q' then
                queued[#queued + 1] = x
                mf[#mf + 1] = 'm' .. names[x]
            end
        end
        local ms = get(w, mf)
        -- The current receipt and queue of each queued node, by queue.
        local rid_at, q_at, byq, qorder = {}, {}, {}, {}
        for y, x in ipairs(queued) do
            local rid = ms[y] or rid_of(w, names[x])
            local _, q = meta(w, from + x - 1)
            rid_at[y], q_at[y] = rid, q
            if not byq[q] then
                byq[q] = {}
                qorder[#qorder + 1] = q
            end
            local list = byq[q]
            list[#list + 1] = rid
        end
        local busy = {}
        for _, q in ipairs(qorder) do
            busy[q] = taken(q, byq[q])
        end
        for y, x in ipairs(queued) do
            local rid, q = rid_at[y], q_at[y]
            if not busy[q][rid] then
                hdel(msgs_key(q), rid)
                hdel(msgs_key(q .. '.DQ'), rid)
                set(w, fields[x], 'k')
            end
        end
    end
    if to < n then
        w.sweep_from = to
    else
        w.sweep_from = nil
    end
end

local function finish(w, state, failure)
    local r = get(w, { 'ret', 'ok', 'ko', 'nonce', 'ps' })
    local ret = tonumber(r[1])
    if not ret or ret < 1 or ret ~= math.floor(ret) then
        raise('ERR workflow ' .. w.id .. ': corrupt ret')
    end
    set(w, 'state', state)
    w.pl = {}
    save_pending(w)
    if state == 'succeeded' then
        if r[2] then
            local rid = rid_of(w, 's')
            local q, payload = build(r[2], rid, nil)
            push(q, rid, payload)
        end
    else
        -- Until its hash expires, messages of its nodes that are still around are dropped
        -- when taken (those the sweep below does not reach, or that a worker held).
        zadd(STOPPED, string.format('%.0f', NOW + ret), w.id)
        STOPPED_NOW = true
        sweep(w, 0)
        if state == 'failed' and r[3] then
            local rid = rid_of(w, 'f')
            local q, payload = build(r[3], rid, '"workflow_failure":' .. failure)
            push(q, rid, payload)
        end
    end
    pexpire(w.key, r[1])
end

-- Follows a next code after a node (or a join) completed.
local function follow(w, nx)
    while true do
        local c = string.sub(nx, 1, 1)
        if c == 'j' then
            local j = string.sub(nx, 2)
            local jf, yf = 'j' .. j, 'y' .. j
            local v = w.v
            local left, code = v[jf], v[yf]
            if left == nil or code == nil or not w.checked then
                local r = get(w, { jf, yf })
                left, code = r[1], r[2]
            end
            left = tonumber(left)
            if not left or left < 1 or not code then
                raise('ERR workflow ' .. w.id .. ': corrupt join ' .. j)
            end
            left = left - 1
            set(w, jf, nstr(left))
            if left > 0 then
                return
            end
            nx = code
        elseif c == 's' then
            start(w, string.sub(nx, 2), 0)
            return
        elseif c == 'S' then
            start_one(w, nx)
            return
        elseif nx == 'e' then
            finish(w, 'succeeded', nil)
            return
        else
            raise('ERR workflow ' .. w.id .. ': corrupt next code ' .. nx)
        end
    end
end

-- Node completed: idempotent; advances only a running workflow, once per node. A message of
-- an earlier workflow with the same id (another nonce) changes nothing.
local function complete(w, node, nonce)
    local sf, xf = 's' .. node, 'x' .. node
    local v = w.v
    -- settle.lua reads these fields ahead, for all the completions of a workflow at once:
    -- then they are all in the cache, and get (which checked the layout) is not needed.
    if not w.checked or v.state == nil or v.nonce == nil or v.ps == nil or v[sf] == nil
        or v[xf] == nil then
        get(w, { 'state', 'nonce', sf, xf, 'ps' })
    end
    local state = v.state
    if not state or stale(w, nonce) then
        return
    end
    local s = v[sf]
    if s ~= 'q' and s ~= 'k' then
        return
    end
    set(w, sf, 'd')
    if state == 'running' and s ~= 'k' then
        local nx = v[xf]
        if not nx then
            raise('ERR workflow ' .. w.id .. ': no next code for node ' .. node)
        end
        follow(w, nx)
        if w.v.state == 'running' then
            resume(w)
        end
    end
end

-- Node failed for good: the workflow fails (once), its handler is enqueued, queued nodes
-- are skipped. reason_json is the error as a JSON string.
local function fail(w, node, reason_json, nonce)
    local r = get(w, { 'state', 'nonce', 's' .. node })
    if not r[1] or stale(w, nonce) then
        return
    end
    local s = r[3]
    if s ~= 'q' and s ~= 'k' then
        return
    end
    set(w, 's' .. node, 'f')
    if r[1] ~= 'running' then
        return
    end
    local actor = meta(w, tonumber(node))
    local failure = '{"id":"' .. w.id .. '","node":' .. node .. ',"actor":' .. cjson.encode(actor)
        .. ',"error":' .. reason_json .. '}'
    set(w, 'fail', failure)
    finish(w, 'failed', failure)
end

-- What a script that advanced workflows reports: { queues pushed onto, { id, node to sweep
-- from (0 included), ... } of stopped workflows with nodes left to sweep, ids of running
-- workflows with start sets left to start (also in ns:__wf_pending__) }.
local function report()
    local sweeps, pend = {}, {}
    for _, w in ipairs(WF_ORDER) do
        if w.sweep_from then
            sweeps[#sweeps + 1] = w.id
            sweeps[#sweeps + 1] = tostring(w.sweep_from)
        end
        if w.pl and #w.pl > 0 and w.v.state == 'running' then
            pend[#pend + 1] = w.id
        end
    end
    return { WOKE_ORDER, sweeps, pend }
end
