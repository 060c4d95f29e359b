-- resume.lua: goes on starting the tasks of a running workflow's start sets that were too big
-- to start in one call (see `ps` in common.lua), START_BUDGET tasks per call (at least one).
-- Included after common.lua and engine.lua.
-- KEYS: none (see common.lua).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: workflow id.
-- Returns: see `report` in engine.lua (the id is in its third list while tasks are left).
-- A workflow with nothing left to start (finished, gone, or all started) leaves
-- ns:__wf_pending__.

local w = wf(ARGV[3])
if get(w, { 'state' })[1] == 'running' then
    resume(w)
end
if #pending(w) == 0 or w.v.state ~= 'running' then
    zrem(PENDING, w.id)
end
flush()
return report()
