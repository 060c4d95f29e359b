-- common.lua: the workflow engine (workflow/engine.rs) in Lua, plus helpers, shared by the
-- scripts that change or read workflow state. scripts.rs prepends it to fetch-free scripts
-- (settle, submit, cancel, status); it defines only locals and touches nothing by itself.
-- KEYS: none. Keys are built from the namespace, as dramatiq's own script does, because the
--   keys a settlement touches (queues of started tasks) are only known inside the script.
-- ARGV[1]: namespace (e.g. "dramatiq"); ARGV[2]: now, integer ms since the epoch (client clock,
--   as in dramatiq). Each including script documents its own ARGV from ARGV[3] on.
-- Returns: nothing (a library).
--
-- Layout of a workflow (all fields of one hash `ns:wf:{<id>}`):
--   state           running | succeeded | failed | cancelled (no TTL while running;
--                   PEXPIRE ret once finished)
--   n, ret          number of task nodes; retention in ms
--   an, ai          JSON array of distinct [actor, queue] pairs; comma list: pair index per node
--   t<i>            template of task i: "<next>\t<queue>\t<delay ms>\t<message_id JSON>\t<body>"
--                   where body is the message JSON from "actor_name" to the inside of
--                   "options", open (no closing brace); `build` adds the rest
--   s<i>            node state: q (queued, or running if in some worker's acks set),
--                   d (done), f (failed), k (skipped); absent: waiting
--   m<i>            receipt of node i's current message when it is not "<i>@<id>" (retries)
--   j<j>, y<j>      join j: members still to complete; next code when it reaches zero
--   ok, ko          templates of the success / failure handler messages
--   fail            {"id","node","actor","error"} JSON of the failure
-- Next codes: "e" (end), "j<j>" (count down join j), "s<ranges>" (start these tasks, "a-b,c").
-- Receipts (redis_message_id) of workflow messages: "<node>@<id>" for the first enqueue,
-- "<node>.<uuid>@<id>" for re-enqueues (made by Rust), "s@<id>" / "f@<id>" for handlers.

local NS = ARGV[1]
local NOW = tonumber(ARGV[2])
local NOW_S = ARGV[2]
local CHUNK = 2000 -- arguments per variadic call, well below Lua's unpack limit

local function k(name)
    return NS .. ':' .. name
end

local function wf_key(id)
    return NS .. ':wf:{' .. id .. '}'
end

-- `redis.call(cmd, key, ...list)` in chunks; list must hold whole pairs for HSET.
local function call_chunked(cmd, key, list)
    local n = #list
    local i = 1
    while i <= n do
        local j = math.min(i + CHUNK - 1, n)
        redis.call(cmd, key, unpack(list, i, j))
        i = j + 1
    end
end

-- A variadic read (HMGET, SMISMEMBER) in chunks; the results concatenated.
local function read_chunked(cmd, key, list)
    local out = {}
    local n = #list
    local i = 1
    while i <= n do
        local j = math.min(i + CHUNK - 1, n)
        local r = redis.call(cmd, key, unpack(list, i, j))
        for x = 1, #r do
            out[#out + 1] = r[x]
        end
        i = j + 1
    end
    return out
end

-- "X" for "X", "X.DQ" and "X.XQ".
local function q_name(q)
    local s = string.sub(q, -3)
    if s == '.DQ' or s == '.XQ' then
        return string.sub(q, 1, -4)
    end
    return q
end

-- "a-b,c" -> {a, ..., b, c}
local function parse_nodes(s)
    local out = {}
    for part in string.gmatch(s, '[^,]+') do
        local a, b = string.match(part, '^(%d+)%-(%d+)$')
        if a then
            for x = tonumber(a), tonumber(b) do
                out[#out + 1] = x
            end
        else
            out[#out + 1] = tonumber(part)
        end
    end
    return out
end

-- ---- Messages waiting to be written: exact queue -> {ids, pairs}; written by flush_out ----

local OUT = {}
local OUT_ORDER = {}
local WOKE = {}
local WOKE_ORDER = {}

local function wake(q)
    if not WOKE[q] then
        WOKE[q] = true
        WOKE_ORDER[#WOKE_ORDER + 1] = q
    end
end

-- Appends rid to the queue; payload nil means the payload is there already (requeue).
local function push(q, rid, payload)
    local o = OUT[q]
    if not o then
        o = { ids = {}, pairs = {} }
        OUT[q] = o
        OUT_ORDER[#OUT_ORDER + 1] = q
    end
    o.ids[#o.ids + 1] = rid
    if payload then
        o.pairs[#o.pairs + 1] = rid
        o.pairs[#o.pairs + 1] = payload
    end
end

local function flush_out()
    for _, q in ipairs(OUT_ORDER) do
        local o = OUT[q]
        if #o.pairs > 0 then
            call_chunked('HSET', k(q .. '.msgs'), o.pairs)
        end
        if #o.ids > 0 then
            call_chunked('RPUSH', k(q), o.ids)
            wake(q)
        end
    end
    OUT = {}
    OUT_ORDER = {}
end

-- The message of a template: returns its exact queue and its JSON. `extra` is more option
-- members ("\"key\":value"), or nil.
local function build(tpl, rid, extra)
    local _, queue, delay, mid, body = string.match(tpl, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
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

local function next_of(tpl)
    return string.match(tpl, '^[^\t]*')
end

-- ---- Workflow hashes, read once per script and written back once by flush_wf ----

local WF = {}
local WF_ORDER = {}

local function wf(id)
    local w = WF[id]
    if not w then
        w = { id = id, key = wf_key(id), v = {}, dirty = {} }
        WF[id] = w
        WF_ORDER[#WF_ORDER + 1] = w
    end
    return w
end

-- Values of fields (false when absent), with this script's own writes applied.
local function get(w, fields)
    local miss = {}
    for _, f in ipairs(fields) do
        if w.v[f] == nil then
            miss[#miss + 1] = f
        end
    end
    if #miss > 0 then
        local vals = read_chunked('HMGET', w.key, miss)
        for i, f in ipairs(miss) do
            if w.v[f] == nil then
                w.v[f] = vals[i]
            end
        end
    end
    local out = {}
    for i, f in ipairs(fields) do
        out[i] = w.v[f]
    end
    return out
end

local function set(w, f, value)
    if not w.dirty[f] then
        w.dirty[f] = true
        w.dirty[#w.dirty + 1] = f
    end
    w.v[f] = value
end

local function flush_wf()
    for _, w in ipairs(WF_ORDER) do
        if #w.dirty > 0 then
            local pairs_ = {}
            for _, f in ipairs(w.dirty) do
                pairs_[#pairs_ + 1] = f
                pairs_[#pairs_ + 1] = w.v[f]
            end
            call_chunked('HSET', w.key, pairs_)
            w.dirty = {}
        end
    end
end

-- Actor and queue of node n.
local function meta(w, n)
    if not w.meta then
        local r = get(w, { 'an', 'ai' })
        w.meta = cjson.decode(r[1])
        w.idx = {}
        for x in string.gmatch(r[2], '[^,]+') do
            w.idx[#w.idx + 1] = tonumber(x)
        end
    end
    local pair = w.meta[w.idx[n + 1] + 1]
    return pair[1], pair[2]
end

-- Which of the receipts rids (on the queues qs, same index) some worker has fetched and not
-- settled: a set of indexes. Looks in the acks sets of every worker with a heartbeat.
local function in_flight(qs, rids)
    local res = {}
    if #rids == 0 then
        return res
    end
    local workers = redis.call('ZRANGE', k('__heartbeats__'), 0, -1)
    local byq, order = {}, {}
    for i, q in ipairs(qs) do
        if not byq[q] then
            byq[q] = {}
            order[#order + 1] = q
        end
        byq[q][#byq[q] + 1] = i
    end
    for _, q in ipairs(order) do
        local idxs = byq[q]
        local ids = {}
        for j, i in ipairs(idxs) do
            ids[j] = rids[i]
        end
        for _, wk in ipairs(workers) do
            local m = read_chunked('SMISMEMBER', k('__acks__.' .. wk .. '.' .. q), ids)
            for j, i in ipairs(idxs) do
                if m[j] == 1 then
                    res[i] = true
                end
            end
        end
    end
    return res
end

-- Nodes in state q, with their receipts and queues.
local function queued_nodes(w)
    local n = tonumber(get(w, { 'n' })[1])
    local fields = {}
    for i = 0, n - 1 do
        fields[#fields + 1] = 's' .. i
    end
    local st = get(w, fields)
    local nodes = {}
    for i = 0, n - 1 do
        if st[i + 1] == 'q' then
            nodes[#nodes + 1] = i
        end
    end
    local mf = {}
    for i, x in ipairs(nodes) do
        mf[i] = 'm' .. x
    end
    local ms = get(w, mf)
    local rids, qs = {}, {}
    for i, x in ipairs(nodes) do
        rids[i] = ms[i] or (x .. '@' .. w.id)
        local _, q = meta(w, x)
        qs[i] = q
    end
    return nodes, rids, qs, st
end

-- Starts task nodes: enqueues their messages (delayed ones on Q.DQ with eta).
local function start(w, nodes)
    local fields = {}
    for i, n in ipairs(nodes) do
        fields[i] = 't' .. n
    end
    local tpls = read_chunked('HMGET', w.key, fields)
    for i, n in ipairs(nodes) do
        if tpls[i] then
            local rid = n .. '@' .. w.id
            local q, payload = build(tpls[i], rid, nil)
            push(q, rid, payload)
            set(w, 's' .. n, 'q')
        end
    end
end

-- The workflow stopped: queued nodes that no worker holds are skipped and their messages
-- dropped (fetch drops ids whose payload is gone).
local function skip_queued(w)
    flush_out()
    local nodes, rids, qs = queued_nodes(w)
    local running = in_flight(qs, rids)
    local del, order = {}, {}
    for i, x in ipairs(nodes) do
        if not running[i] then
            set(w, 's' .. x, 'k')
            for _, q in ipairs({ qs[i], qs[i] .. '.DQ' }) do
                if not del[q] then
                    del[q] = {}
                    order[#order + 1] = q
                end
                del[q][#del[q] + 1] = rids[i]
            end
        end
    end
    for _, q in ipairs(order) do
        call_chunked('HDEL', k(q .. '.msgs'), del[q])
    end
end

local function finish(w, state, failure)
    set(w, 'state', state)
    local r = get(w, { 'ret', 'ok', 'ko' })
    if state == 'succeeded' then
        if r[2] then
            local rid = 's@' .. w.id
            local q, payload = build(r[2], rid, nil)
            push(q, rid, payload)
        end
    else
        skip_queued(w)
        if state == 'failed' and r[3] then
            local rid = 'f@' .. w.id
            local q, payload = build(r[3], rid, '"workflow_failure":' .. failure)
            push(q, rid, payload)
        end
    end
    redis.call('PEXPIRE', w.key, r[1])
end

-- Follows a next code after a node (or a join) completed.
local function follow(w, nx)
    while true do
        local c = string.sub(nx, 1, 1)
        if c == 'j' then
            local j = string.sub(nx, 2)
            local r = get(w, { 'j' .. j, 'y' .. j })
            if not r[1] then
                return
            end
            local left = tonumber(r[1]) - 1
            set(w, 'j' .. j, tostring(left))
            if left > 0 then
                return
            end
            nx = r[2]
        elseif c == 's' then
            start(w, parse_nodes(string.sub(nx, 2)))
            return
        else
            finish(w, 'succeeded', nil)
            return
        end
    end
end

-- Node completed: idempotent; advances only a running workflow, once per node.
local function complete(w, node)
    local r = get(w, { 'state', 's' .. node, 't' .. node })
    if not r[1] then
        return
    end
    local s = r[2]
    if s ~= 'q' and s ~= 'k' then
        return
    end
    set(w, 's' .. node, 'd')
    if r[1] == 'running' and s == 'q' then
        follow(w, next_of(r[3]))
    end
end

-- Node failed for good: the workflow fails (once), its handler is enqueued, queued nodes
-- are skipped. reason_json is the error as a JSON string.
local function fail(w, node, reason_json)
    local r = get(w, { 'state', 's' .. node })
    if not r[1] then
        return
    end
    local s = r[2]
    if s ~= 'q' and s ~= 'k' then
        return
    end
    set(w, 's' .. node, 'f')
    if r[1] ~= 'running' then
        return
    end
    local actor = meta(w, node)
    local failure = '{"id":"' .. w.id .. '","node":' .. node .. ',"actor":' .. cjson.encode(actor)
        .. ',"error":' .. reason_json .. '}'
    set(w, 'fail', failure)
    finish(w, 'failed', failure)
end
