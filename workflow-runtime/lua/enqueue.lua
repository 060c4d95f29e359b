-- enqueue.lua: puts one message on a queue (dramatiq's `enqueue`).
-- KEYS: none; the keys are ns:Q and ns:Q.msgs, built from ARGV.
-- ARGV[1]: namespace; ARGV[2]: exact queue (X, or X.DQ for a delayed message);
-- ARGV[3]: receipt (options.redis_message_id of the payload); ARGV[4]: the encoded message.
-- Returns: 1.

local key = ARGV[1] .. ':' .. ARGV[2]
redis.call('HSET', key .. '.msgs', ARGV[3], ARGV[4])
redis.call('RPUSH', key, ARGV[3])
return 1
