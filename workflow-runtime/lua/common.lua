-- common.lua: helpers shared by the scripts: key types, buffered writes, queues, the cache of
-- workflow hashes. It opens the Redis function library that scripts.rs assembles (this file,
-- engine.lua, the workflow engine, and take.lua, then each script as a function); it defines
-- only locals and touches nothing itself. The state of one call (its arguments, the caches,
-- the write buffers) is set afresh by `begin`, which every script but enqueue and stats calls
-- first: the library is set up once, when it is loaded, not on every call.
-- KEYS: none. Keys are built from the namespace, as dramatiq's own script does, because the
--   keys a settlement touches (queues of started tasks) are only known inside the script.
-- ARGV (the function's arguments) [1]: namespace (e.g. "dramatiq"); [2]: now, integer ms
--   since the epoch (client clock, as in dramatiq). Each script documents its own ARGV from
--   ARGV[3] on.
-- Returns: nothing (a library).
--
-- Discipline: a script first reads and computes, buffering every write (hset, rpush, ...
-- below); `flush` then checks the type of every key it is about to write (TYPE, once per key;
-- keys a read already proved are not asked again) and only then writes. Redis does not roll
-- back a script that fails half-way, so a script that fails (bad data, a key of the wrong
-- type) must fail before its first write, or with it: it then changes nothing, and can be
-- sent again.
--
-- Stopped workflows are also in the zset `ns:__wf_stopped__` until their hash expires.
-- Layout of a workflow (all fields of one hash `ns:wf:{<id>}`), version 3:
--   v               layout version: "3". Every script that reads a workflow refuses, with an
--                   error naming the version, a hash of another layout (or of none).
--   state           running | succeeded | failed | cancelled (no TTL while running;
--                   PEXPIRE ret once finished)
--   nonce           made per submission ([0-9a-f]+); in the receipts of its messages, so that
--                   messages of an earlier workflow with the same id (expired since) are told
--                   apart
--   dig             digest of the plan: submitting the same plan again is a no-op
--   n, ret          number of task nodes; retention in ms
--   an, ai          JSON array of distinct [actor, queue] pairs; pair index of each node, in
--                   decimal, all of the same width (#ai / n), so node i's is at i * width
--   t<i>            template of task i: "<queue>\t<delay ms>\t<message_id JSON>\t<body>"
--                   where body is the message JSON from "actor_name" to the inside of
--                   "options", open (no closing brace); `build` adds the rest. Absent for a
--                   task whose template is in the next code that starts it ("S" below)
--   x<i>            next code of task i (what its completion does)
--   s<i>            node state: q (started: its current message is on a queue or delay queue,
--                   or taken by a worker: "running" is not stored but derived when the status
--                   is read, from the workers' acks sets), d (done), f (failed), k (skipped);
--                   absent: waiting
--   m<i>            receipt of node i's current message when it is not the first (retries)
--   j<j>, y<j>      join j: members still to complete; next code when it reaches zero
--   ok, ko          templates of the success / failure handler messages
--   fail            {"id","node","actor","error"} JSON of the failure
--   ps              start sets not fully started yet (a script starts at most START_BUDGET
--                   tasks, but always at least one of each workflow that it leaves with `ps`,
--                   so that a task in flight carries the rest): "<started>:<ranges>;..." ;
--                   continued by the next script that touches the workflow (a completion,
--                   resume.lua). A workflow with `ps` is also in the zset `ns:__wf_pending__`
--                   (scored by the time of its last progress, ms), which heartbeats work
--                   through, so that nothing depends on a client staying alive.
-- Next codes: "e" (end), "j<j>" (count down join j), "s<ranges>" (start these tasks, "a-b,c"),
-- "S<k>\t<template>" (start task k, the only task of its start set and started from nowhere
-- else, whose template this is; one field read fewer per step of a chain).
-- Receipts (redis_message_id) of workflow messages: "<node>:<nonce>@<id>" for the first
-- enqueue, "<node>:<nonce>.<uuid>@<id>" for re-enqueues (made by Rust from the old receipt),
-- "s:<nonce>@<id>" / "f:<nonce>@<id>" for the handlers (plain messages, never looked up).
-- Only receipts of exactly the first two forms are taken for workflow nodes; any other
-- redis_message_id (a UUID of dramatiq, or anything another producer chose) is a plain message.

-- Set by `begin` for each call (see the end of this file).
local ARGV -- the call's arguments
local NS, NOW_S, NOW -- namespace; now (ms), as given and as a number
local RESET = {} -- what else `begin` resets: functions that engine.lua and others add
local CHUNK = 2000 -- arguments per variadic call, well below Lua's unpack limit
local LAYOUT = '3' -- the layout version of workflow hashes (field v) these scripts read

local function raise(msg)
    error(redis.error_reply(msg))
end

local function k(name)
    return NS .. ':' .. name
end

-- Number to string is slow in Redis's Lua (about 1 µs); node numbers in loops go through this.
local DIG2, NSTR_HI, NSTR_PREFIX = {}, -1, ''
local function nstr(x)
    local hi = math.floor(x / 100)
    local lo = x - hi * 100
    if hi == 0 then
        local d = DIG2[-lo - 1]
        if not d then
            d = string.format('%d', lo)
            DIG2[-lo - 1] = d
        end
        return d
    end
    if hi ~= NSTR_HI then
        NSTR_HI = hi
        NSTR_PREFIX = string.format('%d', hi)
    end
    local d = DIG2[lo]
    if not d then
        d = string.format('%02d', lo)
        DIG2[lo] = d
    end
    return NSTR_PREFIX .. d
end

-- ns:<q>.msgs, for each exact queue q
local MSGS_KEYS
local function msgs_key(q)
    local key = MSGS_KEYS[q]
    if not key then
        key = NS .. ':' .. q .. '.msgs'
        MSGS_KEYS[q] = key
    end
    return key
end

local function wf_key(id)
    return NS .. ':wf:{' .. id .. '}'
end

-- ---- Key types ----

local TYPES -- key -> its type, as far as this call knows ('none': absent)

-- A read of this type succeeded on key: it is of that type, or absent.
local function typed(key, t)
    if not TYPES[key] then
        TYPES[key] = t
    end
end

local function key_type(key)
    local t = TYPES[key]
    if not t then
        t = redis.call('TYPE', key)['ok']
        TYPES[key] = t
    end
    return t
end

local function expect(key, want)
    local t = key_type(key)
    if t ~= 'none' and t ~= want then
        raise('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. want)
    end
end

-- ---- Reads ----

-- A variadic read (HMGET, SMISMEMBER) in chunks; the results concatenated.
local function read_chunked(cmd, key, list)
    local n = #list
    if n == 0 then
        return {}
    elseif n <= CHUNK then
        return redis.call(cmd, key, unpack(list))
    end
    local out = {}
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

local function hmget(key, fields)
    local r = read_chunked('HMGET', key, fields)
    typed(key, 'hash')
    return r
end

local function smismember(key, members)
    local r = read_chunked('SMISMEMBER', key, members)
    typed(key, 'set')
    return r
end

-- ---- Writes, buffered until flush ----

local KEYOPS -- DEL and RENAME, first
local H, H_ORDER -- hash key -> field -> value, or false to delete
local S, S_ORDER -- set key -> member -> true (add) or false (remove)
local Z, Z_ORDER -- zset key -> member -> score, or false to remove
local L, L_ORDER -- list key -> ids to append
local TTL, TTL_ORDER -- key -> ms, or 'persist'; last
local RAW -- { key, i, j }: HSET key ARGV[i..j] (field, value pairs), before the other writes

local function acc(tbl, order, key)
    local a = tbl[key]
    if not a then
        a = { v = {}, order = {} }
        tbl[key] = a
        order[#order + 1] = key
    end
    return a
end

local function put(a, x, value)
    if a.v[x] == nil then
        a.order[#a.order + 1] = x
    end
    a.v[x] = value
end

local function hset(key, f, value)
    put(acc(H, H_ORDER, key), f, value)
end
local function hdel(key, f)
    put(acc(H, H_ORDER, key), f, false)
end
local function sadd(key, m)
    put(acc(S, S_ORDER, key), m, true)
end
local function srem(key, m)
    put(acc(S, S_ORDER, key), m, false)
end
local function zadd(key, score, m)
    put(acc(Z, Z_ORDER, key), m, score)
end
local function zrem(key, m)
    put(acc(Z, Z_ORDER, key), m, false)
end
local function rpush(key, id)
    local a = acc(L, L_ORDER, key)
    a.order[#a.order + 1] = id
end
local function pexpire(key, ms)
    if TTL[key] == nil then
        TTL_ORDER[#TTL_ORDER + 1] = key
    end
    TTL[key] = ms
end
local function persist(key)
    pexpire(key, 'persist')
end
local function del(key)
    KEYOPS[#KEYOPS + 1] = { 'DEL', key }
    TYPES[key] = 'none'
end
-- The caller checked that src exists and dst does not.
local function rename(src, dst)
    KEYOPS[#KEYOPS + 1] = { 'RENAME', src, dst }
    TYPES[dst] = TYPES[src]
    TYPES[src] = 'none'
end

-- `redis.call(cmd, key, ...list)` in chunks; list must hold whole pairs for HSET and ZADD.
local function call_chunked(cmd, key, list)
    local n = #list
    local i = 1
    while i <= n do
        local j = math.min(i + CHUNK - 1, n)
        redis.call(cmd, key, unpack(list, i, j))
        i = j + 1
    end
end

-- Writes the buffer `a` of one key: its removals (entries set to false) with del_cmd, then its
-- additions with add_cmd, each sent as `shape` says: 'fv' field then value (HSET), 'vf' score
-- then member (ZADD), 'f' the member alone (SADD).
local function write_buffered(key, a, del_cmd, add_cmd, shape)
    local adds, dels = {}, {}
    for _, x in ipairs(a.order) do
        local v = a.v[x]
        if not v then
            dels[#dels + 1] = x
        elseif shape == 'fv' then
            adds[#adds + 1] = x
            adds[#adds + 1] = v
        elseif shape == 'vf' then
            adds[#adds + 1] = v
            adds[#adds + 1] = x
        else
            adds[#adds + 1] = x
        end
    end
    call_chunked(del_cmd, key, dels)
    call_chunked(add_cmd, key, adds)
end

local function write_hash(key)
    write_buffered(key, H[key], 'HDEL', 'HSET', 'fv')
end

local function write_set(key)
    write_buffered(key, S[key], 'SREM', 'SADD', 'f')
end

-- Forgets the buffered writes (after an error: nothing of them is to be written).
local function discard()
    KEYOPS, RAW = {}, nil
    H, H_ORDER, S, S_ORDER, Z, Z_ORDER = {}, {}, {}, {}, {}, {}
    L, L_ORDER, TTL, TTL_ORDER = {}, {}, {}, {}
end

-- Checks the type of every key to be written, then writes everything, and empties the
-- buffers (a script may go on reading and flush again).
local function flush()
    -- One key of unknown type (a list, else a hash, else a set) is checked by writing to it
    -- first: a command on a key of another type fails without writing, so if that fails,
    -- nothing was written. (A TYPE less on the hot path.)
    local first, first_kind
    for _, key in ipairs(L_ORDER) do
        if not TYPES[key] then
            first, first_kind = key, 'list'
            break
        end
    end
    if not first then
        for _, key in ipairs(H_ORDER) do
            if not TYPES[key] then
                first, first_kind = key, 'hash'
                break
            end
        end
    end
    if not first then
        for _, key in ipairs(S_ORDER) do
            if not TYPES[key] then
                first, first_kind = key, 'set'
                break
            end
        end
    end
    for _, key in ipairs(H_ORDER) do
        if key ~= first then
            expect(key, 'hash')
        end
    end
    for _, key in ipairs(S_ORDER) do
        if key ~= first then
            expect(key, 'set')
        end
    end
    for _, key in ipairs(Z_ORDER) do
        expect(key, 'zset')
    end
    for _, key in ipairs(L_ORDER) do
        if key ~= first then
            expect(key, 'list')
        end
    end
    if first_kind == 'list' then
        call_chunked('RPUSH', first, L[first].order)
    elseif first_kind == 'hash' then
        write_hash(first)
    elseif first_kind == 'set' then
        write_set(first)
    end
    if first then
        TYPES[first] = first_kind
    end
    -- From here on nothing can fail.
    if RAW then
        local i = RAW[2]
        while i <= RAW[3] do
            local j = math.min(i + CHUNK - 1, RAW[3])
            redis.call('HSET', RAW[1], unpack(ARGV, i, j))
            i = j + 1
        end
    end
    for _, op in ipairs(KEYOPS) do
        if op[1] == 'RENAME' then
            redis.call('RENAME', op[2], op[3])
        else
            redis.call('DEL', op[2])
        end
    end
    for _, key in ipairs(H_ORDER) do
        if key ~= first then
            write_hash(key)
        end
    end
    for _, key in ipairs(S_ORDER) do
        if key ~= first then
            write_set(key)
        end
    end
    for _, key in ipairs(Z_ORDER) do
        write_buffered(key, Z[key], 'ZREM', 'ZADD', 'vf')
    end
    for _, key in ipairs(L_ORDER) do
        if key ~= first then
            call_chunked('RPUSH', key, L[key].order)
        end
    end
    for _, key in ipairs(TTL_ORDER) do
        if TTL[key] == 'persist' then
            redis.call('PERSIST', key)
        else
            redis.call('PEXPIRE', key, TTL[key])
        end
    end
    discard()
end

-- ---- Queues ----

local WOKE, WOKE_ORDER

local function wake(q)
    if not WOKE[q] then
        WOKE[q] = true
        WOKE_ORDER[#WOKE_ORDER + 1] = q
    end
end

-- Appends rid to the exact queue q; payload nil means the payload is there already (requeue).
local function push(q, rid, payload)
    if payload then
        hset(msgs_key(q), rid, payload)
    end
    rpush(NS .. ':' .. q, rid)
    wake(q)
end

-- Node, nonce and workflow id of a workflow node's receipt ("<node>:<nonce>[.<uuid>]@<id>");
-- nil if rid is not exactly of that form (dramatiq's receipts are UUIDs, handlers' start with
-- s or f, and other producers may choose anything, "42@host-7" say: those are plain
-- messages, handed out and never dropped for want of a workflow).
local function parse_rid(rid)
    local node, nonce, id = string.match(rid, '^(%d+):([0-9a-f]+)[^@]*@([A-Za-z0-9._:-]+)$')
    if not node or (#node > 1 and string.byte(node, 1) == 48) then
        return nil -- (leading zeros: not one of ours)
    end
    return node, nonce, id
end

-- The nonce of a receipt ("s:<nonce>@<id>" and "<node>:<nonce>...@<id>"), or nil.
local function rid_nonce(rid)
    return string.match(rid, '^[^:@.]*:([^.@]+)')
end

-- The zset of workflows with start sets left to start (see `ps` above): ns:__wf_pending__.
local PENDING
-- The zset of stopped (failed or cancelled) workflows, scored by when their hash expires (ms):
-- taking a message checks its workflow here, with one ZMSCORE per batch, and reads the hash of
-- only those found (see take.lua). Entries past their score are removed by heartbeats.
-- ns:__wf_stopped__.
local STOPPED

-- ---- Workflow hashes, read once per script and written back by flush ----

local WF, WF_ORDER -- workflow id -> what this call read and wrote of it; in order

local function wf(id)
    local w = WF[id]
    if not w then
        -- rkey: where its fields are read (a staged plan is read before its rename).
        w = { id = id, key = wf_key(id), v = {} }
        w.rkey = w.key
        WF[id] = w
        WF_ORDER[#WF_ORDER + 1] = w
    end
    return w
end

-- Why a workflow hash of another layout than LAYOUT cannot be read (nil if it can): v and
-- state as read (false if absent). A hash without state is no workflow (absent).
local function layout_error(id, v, state)
    if state and v ~= LAYOUT then
        return 'ERR workflow ' .. id .. ': its state in Redis has layout '
            .. (v and ('v' .. v) or 'v1 (no version field)')
            .. ', which this version of workflow-runtime cannot read (it reads v' .. LAYOUT
            .. '); finish it with the version that started it'
    end
end

local function check_layout(id, v, state)
    local err = layout_error(id, v, state)
    if err then
        raise(err)
    end
end

-- Values of fields (false when absent), with this script's own writes applied. The first
-- read of a workflow also reads its layout version and refuses an unknown one.
local function get(w, fields)
    local v = w.v
    local miss, nmiss = nil, 0
    local first = not w.checked
    if first then
        w.checked = true
        miss = {}
        if v.v == nil then
            nmiss = 1
            miss[1] = 'v'
        end
        if v.state == nil then
            nmiss = nmiss + 1
            miss[nmiss] = 'state'
        end
    end
    local nf = #fields
    for i = 1, nf do
        local f = fields[i]
        if v[f] == nil then
            if not miss then
                miss = {}
            end
            nmiss = nmiss + 1
            miss[nmiss] = f
        end
    end
    if nmiss > 0 then
        local vals = hmget(w.rkey, miss)
        for i = 1, nmiss do
            local f = miss[i]
            if v[f] == nil then
                v[f] = vals[i]
            end
        end
    end
    if first then
        check_layout(w.id, v.v, v.state)
    end
    local out = {}
    for i = 1, nf do
        out[i] = v[fields[i]]
    end
    return out
end

-- The value of one field (see get), without tables when it is known already.
local function get1(w, f)
    local x = w.v[f]
    if x == nil or not w.checked then
        return get(w, { f })[1]
    end
    return x
end

-- Sets a field; false deletes it.
local function set(w, f, value)
    w.v[f] = value
    if value then
        hset(w.key, f, value)
    else
        hdel(w.key, f)
    end
end

-- Starts a call with arguments `args` (see ARGV above): sets the namespace and the time, and
-- empties the caches and the buffers. Returns an error reply if the arguments are bad.
local function begin(args)
    ARGV = args
    NS, NOW_S = args[1], args[2]
    if type(NS) ~= 'string' or NS == '' or type(NOW_S) ~= 'string'
        or not string.match(NOW_S, '^%d+$') then
        return redis.error_reply('ERR bad namespace or time')
    end
    NOW = tonumber(NOW_S)
    MSGS_KEYS, TYPES = {}, {}
    discard()
    WOKE, WOKE_ORDER = {}, {}
    WF, WF_ORDER = {}, {}
    PENDING, STOPPED = NS .. ':__wf_pending__', NS .. ':__wf_stopped__'
    for i = 1, #RESET do
        RESET[i]()
    end
end
