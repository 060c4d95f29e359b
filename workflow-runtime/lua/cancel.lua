-- cancel.lua: cancels a running workflow: it is marked cancelled, nothing further starts, its
-- queued tasks are skipped (their payloads deleted, so fetch drops them; at most SWEEP_SLICE
-- nodes here, the caller goes on with sweep.lua), its state expires after the retention.
-- Included after common.lua and engine.lua.
-- KEYS: none (see common.lua).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: workflow id.
-- Returns: { 1 if cancelled, 0 if it had already finished, -1 if no such workflow exists;
--   the node to go on sweeping from (with sweep.lua), -1 if none }.

local w = wf(ARGV[3])
local t = key_type(w.key)
if t == 'none' then
    return { -1, -1 }
elseif t ~= 'hash' then
    return redis.error_reply('WRONGTYPE cancel: ' .. w.key .. ' holds a ' .. t)
end
local state = get(w, { 'state' })[1]
if not state then
    return { -1, -1 }
end
if state ~= 'running' then
    return { 0, -1 }
end
finish(w, 'cancelled', nil)
flush()
return { 1, w.sweep_from or -1 }
