-- heartbeat.lua: records this worker's heartbeat, gives back the messages of dead workers and
-- expires old dead letters (dramatiq's maintenance, for the queues this worker consumes).
-- Included after common.lua.
-- KEYS: none; keys are built from the namespace (ns:__heartbeats__, ns:__acks__.<w>.Q, ns:Q,
--   ns:Q.msgs, ns:X.XQ, ns:X.XQ.msgs, and the hashes of workflows whose nodes come back).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id; ARGV[4]: heartbeat timeout (ms):
--   a worker whose heartbeat is older is dead; ARGV[5]: dead message TTL (ms);
-- ARGV[6]: offset: where the page of dead workers looked at in this call starts (0 at first,
--   then what the previous call returned);
-- ARGV[7]: f, the number of workers to forget; ARGV[8 .. 7+f]: those workers (the caller
--   found no acks set of theirs left); each is removed from the heartbeats only if still dead;
-- ARGV[8+f ..]: the queues (X and X.DQ) this worker consumes.
-- Each call looks at the PAGE most recently dead workers and at PAGE more from `offset` on
-- (oldest first), so that every dead worker is looked at within a few calls, however many
-- others died before it with messages on queues nobody here consumes.
-- Dead letters: at most EXPIRE_MAX per queue per call.
-- Returns: { dead workers looked at, number of messages given back, queues pushed onto,
--   next offset, 1 if dead letters are left to expire (call again) else 0 }.
-- A key of the wrong type among the dead workers' or the dead letters' is skipped, not an
-- error: the heartbeat must go on.

local PAGE = 50
local EXPIRE_CHUNK = 1000
local EXPIRE_MAX = 20000

local worker = ARGV[3]
local timeout, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local offset, f = tonumber(ARGV[6]), tonumber(ARGV[7])
if type(worker) ~= 'string' or worker == '' or not timeout or not ttl or not offset
    or offset < 0 or not f or f < 0 or #ARGV < 7 + f then
    return redis.error_reply('ERR heartbeat: bad arguments')
end
local hb = k('__heartbeats__')
expect(hb, 'zset')
local cutoff = string.format('%.0f', NOW - timeout)
local queues = {}
for i = 8 + f, #ARGV do
    queues[#queues + 1] = ARGV[i]
end

for i = 8, 7 + f do
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

local recovered = 0
local nodes, norder = {}, {} -- workflow id -> { node -> nonce or true }
for _, d in ipairs(dead) do
    for _, q in ipairs(queues) do
        local acks = k('__acks__.' .. d .. '.' .. q)
        local ids = try('set', 'SMEMBERS', acks)
        if ids and #ids > 0 and writable(k(q), 'list') and writable(k(q .. '.msgs'), 'hash') then
            local have = hmget(k(q .. '.msgs'), ids)
            for x, id in ipairs(ids) do
                if have[x] then
                    push(q, id, nil)
                    recovered = recovered + 1
                    local node, nonce, wid = parse_rid(id)
                    if node and string.sub(q, -3) ~= '.DQ' then
                        if not nodes[wid] then
                            nodes[wid] = {}
                            norder[#norder + 1] = wid
                        end
                        nodes[wid][node] = nonce or true
                    end
                end
            end
            del(acks)
        end
    end
end

-- Nodes whose messages came back are queued again, not running.
for _, wid in ipairs(norder) do
    local w = wf(wid)
    local list = {}
    for node in pairs(nodes[wid]) do
        list[#list + 1] = node
    end
    local fields = { 'state', 'nonce' }
    for _, node in ipairs(list) do
        fields[#fields + 1] = 's' .. node
    end
    local r = try('hash', 'HMGET', w.key, unpack(fields))
    if r and r[1] == 'running' then
        for x, node in ipairs(list) do
            local nonce = nodes[wid][node]
            if r[2 + x] == 'r' and (nonce == true or not r[2] or nonce == r[2]) then
                set(w, 's' .. node, 'q')
            end
        end
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

zadd(hb, NOW_S, worker)
flush()
return { dead, recovered, WOKE_ORDER, next_offset, more }
