-- cancel.lua: cancels a running workflow: it is marked cancelled, nothing further starts, its
-- queued tasks are skipped (their payloads deleted, so fetch drops them), its state expires
-- after the retention. Included after common.lua.
-- KEYS: none (see common.lua).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: workflow id.
-- Returns: 1 if cancelled, 0 if it had already finished, -1 if no such workflow exists.

local w = wf(ARGV[3])
local state = get(w, { 'state' })[1]
if not state then
    return -1
end
if state ~= 'running' then
    return 0
end
finish(w, 'cancelled', nil)
flush_wf()
flush_out()
return 1
