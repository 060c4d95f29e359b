-- enqueue.lua: puts one message on a queue (dramatiq's `enqueue`).
-- KEYS: none; the keys are ns:Q and ns:Q.msgs, built from ARGV.
-- ARGV[1]: namespace; ARGV[2]: exact queue (X, or X.DQ for a delayed message);
-- ARGV[3]: receipt (options.redis_message_id of the payload); ARGV[4]: the encoded message.
-- Returns: 1. Fails, having written nothing, if ns:Q.msgs is not a hash or ns:Q not a list.

local key = ARGV[1] .. ':' .. ARGV[2]
local t = redis.call('TYPE', key .. '.msgs')['ok']
if t ~= 'none' and t ~= 'hash' then
    return redis.error_reply('WRONGTYPE ' .. key .. '.msgs holds a ' .. t .. ', not a hash')
end
redis.call('RPUSH', key, ARGV[3]) -- fails on a key that is not a list, having written nothing
redis.call('HSET', key .. '.msgs', ARGV[3], ARGV[4])
return 1
