-- heartbeat.lua: records this worker's heartbeat, gives back the messages of dead workers,
-- expires old dead letters (dramatiq's maintenance, for the queues this worker consumes) and
-- claims workflows whose start sets are left to start. Included after common.lua.
-- KEYS: none; keys are built from the namespace (ns:__heartbeats__, ns:__acks__.<w>.Q, ns:Q,
--   ns:Q.msgs, ns:X.XQ, ns:X.XQ.msgs, ns:__wf_pending__, ns:__wf_stopped__, and the hashes of
--   workflows whose nodes come back).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id; ARGV[4]: heartbeat timeout (ms):
--   a worker whose heartbeat is older is dead; ARGV[5]: dead message TTL (ms);
-- ARGV[6]: offset: where the page of dead workers looked at in this call starts (0 at first,
--   then what the previous call returned);
-- ARGV[7]: grace (ms): a workflow in ns:__wf_pending__ that made no progress for that long is
--   claimed (its score set to now) and returned, for the caller to go on starting its tasks;
-- ARGV[8]: f, the number of workers to forget; ARGV[9 .. 8+f]: those workers (the caller
--   found no acks set of theirs left); each is removed from the heartbeats only if still dead;
-- ARGV[9+f ..]: the queues (X and X.DQ) this worker consumes.
-- Each call looks at the PAGE most recently dead workers and at PAGE more from `offset` on
-- (oldest first), so that every dead worker is looked at within a few calls, however many
-- others died before it with messages on queues nobody here consumes.
-- A dead worker's message of a workflow node (see parse_rid in common.lua) is given back only
-- if its node may still run (as fetch decides); otherwise it is dropped, and its node marked
-- skipped if its workflow stopped and this is the node's current message.
-- Dead letters: at most EXPIRE_MAX per queue per call.
-- Returns: { dead workers looked at, number of messages given back, queues pushed onto,
--   next offset, 1 if dead letters are left to expire (call again) else 0, ids of the
--   workflows claimed }.
-- A key of the wrong type among the dead workers', the dead letters' or the workflows' is
-- skipped, not an error: the heartbeat must go on.

local PAGE = 50
local EXPIRE_CHUNK = 1000
local EXPIRE_MAX = 20000
local PENDING_PAGE = 10 -- workflows with start sets left claimed per call

local worker = ARGV[3]
local timeout, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local offset, grace, f = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if type(worker) ~= 'string' or worker == '' or not timeout or not ttl or not offset
    or offset < 0 or not grace or grace < 0 or not f or f < 0 or #ARGV < 8 + f then
    return redis.error_reply('ERR heartbeat: bad arguments')
end
local hb = k('__heartbeats__')
expect(hb, 'zset')
local cutoff = string.format('%.0f', NOW - timeout)
local queues = {}
for i = 9 + f, #ARGV do
    queues[#queues + 1] = ARGV[i]
end

for i = 9, 8 + f do
    local score = redis.call('ZSCORE', hb, ARGV[i])
    if score and tonumber(score) < NOW - timeout then
        zrem(hb, ARGV[i])
    end
end

-- Reads key with a command of type t; nil (and the key left alone) if it holds another type.
local function try(t, cmd, key, ...)
    local r = redis.pcall(cmd, key, ...)
    if type(r) == 'table' and r.err then
        return nil
    end
    typed(key, t)
    return r
end

local function writable(key, t)
    local kt = key_type(key)
    return kt == 'none' or kt == t
end

local dead, seen = {}, {}
local newest = redis.call('ZREVRANGEBYSCORE', hb, '(' .. cutoff, '-inf', 'LIMIT', 0, PAGE)
local paged = redis.call('ZRANGEBYSCORE', hb, '-inf', '(' .. cutoff, 'LIMIT', offset, PAGE)
for _, list in ipairs({ newest, paged }) do
    for _, d in ipairs(list) do
        if d ~= worker and not seen[d] then
            seen[d] = true
            dead[#dead + 1] = d
        end
    end
end
local next_offset = 0
if #paged == PAGE then
    next_offset = offset + PAGE
end

-- The messages of dead workers that are still there, by queue.
local back = {} -- { q, id } in order
local nodes, norder = {}, {} -- workflow id -> list of indexes into back
for _, d in ipairs(dead) do
    for _, q in ipairs(queues) do
        local acks = k('__acks__.' .. d .. '.' .. q)
        local ids = try('set', 'SMEMBERS', acks)
        if ids and #ids > 0 and writable(k(q), 'list') and writable(k(q .. '.msgs'), 'hash') then
            local have = hmget(k(q .. '.msgs'), ids)
            for x, id in ipairs(ids) do
                if have[x] then
                    back[#back + 1] = { q, id }
                    local node, _, wid = parse_rid(id)
                    if node then
                        if not nodes[wid] then
                            nodes[wid] = {}
                            norder[#norder + 1] = wid
                        end
                        local list = nodes[wid]
                        list[#list + 1] = #back
                    end
                end
            end
            del(acks)
        end
    end
end

-- Messages of workflow nodes that must not run are dropped (see fetch.lua).
local dropped = {}
for _, wid in ipairs(norder) do
    local w = wf(wid)
    local list = nodes[wid]
    local fields = { 'state', 'nonce', 'v' }
    for _, b in ipairs(list) do
        local node = parse_rid(back[b][2])
        fields[#fields + 1] = 's' .. node
        fields[#fields + 1] = 'm' .. node
    end
    local r = try('hash', 'HMGET', w.key, unpack(fields))
    -- (The messages of a workflow of an unknown layout are given back as they are: its
    -- completions are refused loudly, by settle.lua.)
    if r and (not r[1] or r[3] == LAYOUT) then
        local state, mine = r[1], r[2]
        for x, b in ipairs(list) do
            local id = back[b][2]
            local node, nonce = parse_rid(id)
            local s, m = r[2 + 2 * x], r[3 + 2 * x]
            if not state or nonce ~= mine or s ~= 'q' then
                dropped[b] = true
            elseif state ~= 'running' then
                dropped[b] = true
                if id == (m or (node .. ':' .. mine .. '@' .. wid)) then
                    set(w, 's' .. node, 'k')
                end
            end
        end
    end
end

local recovered = 0
for b, e in ipairs(back) do
    if dropped[b] then
        hdel(k(e[1] .. '.msgs'), e[2])
    else
        push(e[1], e[2], nil)
        recovered = recovered + 1
    end
end

-- Dead letters older than the TTL.
local more = 0
local old_cutoff = string.format('%.0f', NOW - ttl)
for _, q in ipairs(queues) do
    if string.sub(q, -3) ~= '.DQ' then
        local xq = k(q .. '.XQ')
        local expired = 0
        while expired < EXPIRE_MAX do
            local old = try('zset', 'ZRANGEBYSCORE', xq, '-inf', old_cutoff, 'LIMIT', expired, EXPIRE_CHUNK)
            if not old or #old == 0 or not writable(xq .. '.msgs', 'hash') then
                break
            end
            for _, id in ipairs(old) do
                zrem(xq, id)
                hdel(xq .. '.msgs', id)
            end
            expired = expired + #old
            if #old < EXPIRE_CHUNK then
                break
            end
        end
        if expired >= EXPIRE_MAX then
            more = 1
        end
    end
end

-- Workflows with start sets left that made no progress for a while.
local due = try('zset', 'ZRANGEBYSCORE', PENDING, '-inf', string.format('%.0f', NOW - grace),
    'LIMIT', 0, PENDING_PAGE) or {}
for _, id in ipairs(due) do
    zadd(PENDING, NOW_S, id)
end

zadd(hb, NOW_S, worker)
flush()
-- Stopped workflows whose hash has expired (harmless to leave if this is not reached).
if writable(STOPPED, 'zset') then
    redis.call('ZREMRANGEBYSCORE', STOPPED, '-inf', '(' .. NOW_S)
end
return { dead, recovered, WOKE_ORDER, next_offset, more, due }
