-- submit.lua: writes a workflow's plan and enqueues its entry tasks, atomically, so workers
-- never see half a workflow. Included after common.lua.
-- KEYS: none (see common.lua); writes ns:wf:{<id>} and the queues of the entry tasks.
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: workflow id;
-- ARGV[4]: "1" if the plan was uploaded to ns:wf:{<id>}:staging (big plans, in chunks), which
--   is renamed into place; "0" if the plan's fields are in ARGV[6..];
-- ARGV[5]: the entry tasks as ranges ("0", "0-999,1500"); empty: the workflow succeeds at once;
-- ARGV[6..]: field, value, field, value, ... of the plan (see common.lua), without `state`.
-- Returns: the exact queues onto which messages were pushed, or an error if a workflow with
--   this id exists.

local id, staged, entry = ARGV[3], ARGV[4], ARGV[5]
if not id or id == '' or (staged ~= '0' and staged ~= '1') then
    return redis.error_reply('submit: bad arguments')
end
if (#ARGV - 5) % 2 ~= 0 then
    return redis.error_reply('submit: plan fields come in pairs')
end
local w = wf(id)
if redis.call('EXISTS', w.key) == 1 then
    return redis.error_reply('submit: a workflow with id ' .. id .. ' exists already')
end
if staged == '1' then
    local staging = w.key .. ':staging'
    if redis.call('EXISTS', staging) == 0 then
        return redis.error_reply('submit: the staged plan of ' .. id .. ' is missing (expired?)')
    end
    redis.call('RENAME', staging, w.key)
    redis.call('PERSIST', w.key)
    redis.call('HSET', w.key, 'state', 'running')
else
    local fields = {}
    for i = 6, #ARGV do
        fields[#fields + 1] = ARGV[i]
    end
    fields[#fields + 1] = 'state'
    fields[#fields + 1] = 'running'
    call_chunked('HSET', w.key, fields)
end
w.v.state = 'running'

if entry == '' then
    finish(w, 'succeeded', nil)
else
    start(w, parse_nodes(entry))
end
flush_wf()
flush_out()
return WOKE_ORDER
