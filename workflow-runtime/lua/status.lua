-- status.lua: a snapshot of a workflow. Read-only. Included after common.lua.
-- KEYS: none (see common.lua).
-- ARGV[1]: namespace; ARGV[2]: now (ms); ARGV[3]: workflow id.
-- Returns: nil if no such workflow exists (never submitted, or expired), else
--   { state, an, ai, failure JSON or "", node states } where node states has one letter per
--   node: w waiting, q queued, r running (fetched by a live or not yet recovered worker),
--   d done, f failed, k skipped (also: never started in a failed or cancelled workflow).

local w = wf(ARGV[3])
local h = get(w, { 'state', 'an', 'ai', 'fail' })
if not h[1] then
    return false
end
local nodes, rids, qs, st = queued_nodes(w)
local running = in_flight(qs, rids)
-- Nodes that never started are skipped once the workflow failed or was cancelled.
local never = 'w'
if h[1] == 'failed' or h[1] == 'cancelled' then
    never = 'k'
end
local letters = {}
for i = 1, #st do
    letters[i] = st[i] or never
end
for i, x in ipairs(nodes) do
    if running[i] then
        letters[x + 1] = 'r'
    end
end
return { h[1], h[2], h[3], h[4] or '', table.concat(letters) }
