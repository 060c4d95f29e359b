-- sweep.lua: goes on skipping the queued tasks of a stopped (failed or cancelled) workflow,
-- SWEEP_SLICE nodes per call, so that no call keeps Redis busy for long. Included after
-- common.lua and engine.lua.
-- KEYS: none (see common.lua).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: workflow id; ARGV[4]: first node to look at.
-- Returns: the node to go on from (0 included), -1 when done (or if the workflow is gone or
--   running).

local w = wf(ARGV[3])
local from = tonumber(ARGV[4])
if not from or from < 0 or from ~= math.floor(from) then
    return redis.error_reply('ERR sweep: bad node')
end
local state = get(w, { 'state' })[1]
if not state or state == 'running' then
    return -1
end
sweep(w, from)
flush()
return w.sweep_from or -1
