-- submit.lua: writes a workflow's plan and enqueues its entry tasks, atomically, so workers
-- never see half a workflow. Included after common.lua and engine.lua.
-- KEYS: none (see common.lua); writes ns:wf:{<id>} and the queues of the entry tasks.
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: workflow id; ARGV[4]: nonce of this
--   submission ([0-9a-f]+); ARGV[5]: digest of the plan;
-- ARGV[6]: "1" if the plan was uploaded to ns:wf:{<id>}:staging:<nonce> (big plans, in
--   chunks), which is renamed into place; "0" if the plan's fields are in ARGV[8..];
-- ARGV[7]: the entry tasks as ranges ("0", "0-999,1500"); empty: the workflow succeeds at once;
-- ARGV[8..]: field, value, field, value, ... of the plan (see common.lua), without `v`,
--   `state`, `nonce` and `dig`.
-- Idempotent: if the workflow exists with the same digest (this plan was submitted before,
--   e.g. by a call whose answer was lost), nothing is written but the start of tasks left to
--   start; a workflow with this id and another plan (or of another layout) is an error.
-- Starts at most START_BUDGET tasks; more are left in `ps` (and the workflow in
--   ns:__wf_pending__) for resume.lua.
-- Returns: see `report` in engine.lua.

local id, nonce, digest, staged, entry = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if not id or id == '' or not nonce or not string.match(nonce, '^[0-9a-f]+$') or not digest
    or digest == '' or (staged ~= '0' and staged ~= '1') or not entry then
    return redis.error_reply('ERR submit: bad arguments')
end
if (#ARGV - 7) % 2 ~= 0 then
    return redis.error_reply('ERR submit: plan fields come in pairs')
end
local w = wf(id)
local staging = w.key .. ':staging:' .. nonce
local t = key_type(w.key)
if t == 'hash' then
    local r = get(w, { 'dig', 'state' })
    if r[1] ~= digest then
        return redis.error_reply('ERR submit: a workflow with id ' .. id .. ' exists already')
    end
    if staged == '1' then
        del(staging)
    end
    if r[2] == 'running' then
        resume(w)
    end
    flush()
    return report()
elseif t ~= 'none' then
    return redis.error_reply('WRONGTYPE submit: ' .. w.key .. ' holds a ' .. t)
end

if staged == '1' then
    if key_type(staging) ~= 'hash' then
        return redis.error_reply('ERR submit: the staged plan of ' .. id .. ' is missing (expired?)')
    end
    w.rkey = staging
    rename(staging, w.key)
    persist(w.key)
elseif #ARGV > 8 then
    -- Written by flush straight from ARGV (no buffer entry per field); read from the cache.
    local v = w.v
    for i = 8, #ARGV, 2 do
        v[ARGV[i]] = ARGV[i + 1]
    end
    RAW = { w.key, 8, #ARGV }
    expect(w.key, 'hash')
end
set(w, 'v', LAYOUT)
set(w, 'state', 'running')
set(w, 'nonce', nonce)
set(w, 'dig', digest)

if entry == '' then
    finish(w, 'succeeded', nil)
else
    start(w, entry, 0)
end
flush()
return report()
