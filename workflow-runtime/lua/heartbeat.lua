-- heartbeat.lua: records this worker's heartbeat, gives back the messages of dead workers and
-- expires old dead letters (dramatiq's maintenance, for the queues this worker consumes).
-- KEYS: none; keys are built from the namespace (ns:__heartbeats__, ns:__acks__.<w>.Q, ns:Q,
--   ns:Q.msgs, ns:X.XQ, ns:X.XQ.msgs).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: worker id; ARGV[4]: heartbeat timeout (ms):
--   a worker whose heartbeat is older is dead; ARGV[5]: dead message TTL (ms);
-- ARGV[6]: f, the number of workers to forget; ARGV[7 .. 6+f]: those workers (the caller
--   found no acks set of theirs left); each is removed from the heartbeats only if still dead;
-- ARGV[7+f ..]: the queues (X and X.DQ) this worker consumes.
-- Returns: { dead workers looked at, number of messages given back, queues pushed onto }.

local ns, worker = ARGV[1], ARGV[3]
local now = tonumber(ARGV[2])
local timeout, ttl, f = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if not now or not timeout or not ttl or not f then
    return redis.error_reply('heartbeat: bad arguments')
end
local hb = ns .. ':__heartbeats__'
local cutoff = now - timeout
local queues = {}
for i = 7 + f, #ARGV do
    queues[#queues + 1] = ARGV[i]
end

redis.call('ZADD', hb, ARGV[2], worker)
for i = 7, 6 + f do
    local score = redis.call('ZSCORE', hb, ARGV[i])
    if score and tonumber(score) < cutoff then
        redis.call('ZREM', hb, ARGV[i])
    end
end

local dead = redis.call('ZRANGEBYSCORE', hb, '-inf', '(' .. string.format('%.0f', cutoff), 'LIMIT', 0, 100)
local recovered, woke = 0, {}
for _, d in ipairs(dead) do
    if d ~= worker then
        for _, q in ipairs(queues) do
            local acks = ns .. ':__acks__.' .. d .. '.' .. q
            local ids = redis.call('SMEMBERS', acks)
            if #ids > 0 then
                local back = {}
                local i = 1
                while i <= #ids do
                    local j = math.min(i + 1999, #ids)
                    local chunk = { unpack(ids, i, j) }
                    local have = redis.call('HMGET', ns .. ':' .. q .. '.msgs', unpack(chunk))
                    for x, id in ipairs(chunk) do
                        if have[x] then
                            back[#back + 1] = id
                        end
                    end
                    i = j + 1
                end
                i = 1
                while i <= #back do
                    local j = math.min(i + 1999, #back)
                    redis.call('RPUSH', ns .. ':' .. q, unpack(back, i, j))
                    i = j + 1
                end
                if #back > 0 then
                    recovered = recovered + #back
                    woke[#woke + 1] = q
                end
                redis.call('DEL', acks)
            end
        end
    end
end

for _, q in ipairs(queues) do
    if string.sub(q, -3) ~= '.DQ' then
        local xq = ns .. ':' .. q .. '.XQ'
        local old = redis.call('ZRANGEBYSCORE', xq, '-inf', string.format('%.0f', now - ttl), 'LIMIT', 0, 1000)
        if #old > 0 then
            redis.call('ZREM', xq, unpack(old))
            redis.call('HDEL', xq .. '.msgs', unpack(old))
        end
    end
end

return { dead, recovered, woke }
