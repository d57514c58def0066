"""The Lua scripts `ferryllm.shared_state` runs in Redis: each one atomic, one round trip, with
Redis's own clock (`TIME`), so instances whose clocks disagree still agree on every limit.

Times are milliseconds. Token buckets are hashes {t: tokens, s: stamp}; an absent bucket is a
full one, and each bucket expires once it would have refilled (idle buckets cost nothing).
Leases are sorted-set members scored by their expiry; expired members are dropped before every
count, so the slots of an instance that died come back `lease_ttl_secs` after its last renewal.
No key or value ever holds a client's key or any request content: scopes are client names or
key ids (short hashes), members are `instance:counter`.
"""

# Shared prelude: the clock and a bucket read (refilled to now, not yet written back).
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function level(key, per_min)
  local b = redis.call('HMGET', key, 't', 's')
  local tokens, stamp = tonumber(b[1]), tonumber(b[2])
  local rate = per_min / 60000
  if not tokens then return per_min, rate end
  if now > stamp then tokens = math.min(per_min, tokens + (now - stamp) * rate) end
  return tokens, rate
end
local function store(key, tokens, per_min, rate)
  redis.call('HSET', key, 't', tokens, 's', now)
  redis.call('PEXPIRE', key, math.ceil((per_min - tokens) / rate) + 1000)
end
"""

# KEYS: global bucket, global leases, client bucket, client leases, client tpm, fleet hash
# ARGV: lease member, lease ttl ms, global rate/min, global cap, client rate/min, client cap,
#       client tokens/min, client daily budget, client usage key prefix, known fleet version
# → {1|0, reason, limit, wait ms, fleet version, fleet fields (when the version moved) or {},
#    Redis time ms}
ADMIT = _PRELUDE + """
local member, ttl = ARGV[1], tonumber(ARGV[2])
local grate, gcap, crate, ccap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local tpm, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
local v = redis.call('HGET', KEYS[6], '_v') or '0'
local breakers = {}
if v ~= ARGV[10] then breakers = redis.call('HGETALL', KEYS[6]) end
local function refuse(reason, limit, wait)
  return {0, reason, limit, math.ceil(wait), v, breakers, now}
end
if gcap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= gcap then return refuse('concurrency', gcap, 1000) end
end
if ccap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  if redis.call('ZCARD', KEYS[4]) >= ccap then return refuse('client_concurrency', ccap, 1000) end
end
if tpm > 0 then
  local lvl, rate = level(KEYS[5], tpm)
  if lvl <= 0 then return refuse('tokens', tpm, (1 - lvl) / rate) end
end
if budget > 0 then
  local used = tonumber(redis.call('HGET', ARGV[9] .. math.floor(now / 86400000), 'total') or '0')
  if used >= budget then return refuse('budget', budget, 86400000 - now % 86400000) end
end
local ct, cr, gt, gr
if crate > 0 then
  ct, cr = level(KEYS[3], crate)
  if ct < 1 then return refuse('client_rate', crate, (1 - ct) / cr) end
end
if grate > 0 then
  gt, gr = level(KEYS[1], grate)
  if gt < 1 then return refuse('rate', grate, (1 - gt) / gr) end
end
if crate > 0 then store(KEYS[3], ct - 1, crate, cr) end
if grate > 0 then store(KEYS[1], gt - 1, grate, gr) end
if gcap > 0 then
  redis.call('ZADD', KEYS[2], now + ttl, member)
  redis.call('PEXPIRE', KEYS[2], ttl * 2)
end
if ccap > 0 then
  redis.call('ZADD', KEYS[4], now + ttl, member)
  redis.call('PEXPIRE', KEYS[4], ttl * 2)
end
return {1, '', 0, 0, v, breakers, now}
"""

# KEYS: global leases, client leases, client tpm
# ARGV: lease member, tokens, client tokens/min, usage key prefix ('' = none), input, output,
#       cache read, cache write
FINISH = _PRELUDE + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local tokens, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
if tokens > 0 and tpm > 0 then
  local lvl, rate = level(KEYS[3], tpm)
  store(KEYS[3], lvl - tokens, tpm, rate)
end
if tokens > 0 and ARGV[4] ~= '' then
  local key = ARGV[4] .. math.floor(now / 86400000)
  redis.call('HINCRBY', key, 'total', tokens)
  redis.call('HINCRBY', key, 'input', ARGV[5])
  redis.call('HINCRBY', key, 'output', ARGV[6])
  redis.call('HINCRBY', key, 'cache_read', ARGV[7])
  redis.call('HINCRBY', key, 'cache_write', ARGV[8])
  redis.call('EXPIRE', key, 3 * 86400)
end
return 1
"""

# KEYS: the lease sets, one per member; ARGV: ttl ms, then the members. Only live leases are
# extended (ZADD XX): a lease that already expired is not brought back.
RENEW = _PRELUDE + """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl * 2)
end
return 1
"""

# The fleet hash: per provider P the breaker fields P|s (state), P|f (consecutive failures),
# P|o (opened at, ms), P|q (probe admitted at, ms), and per pool key L of P the field P#L (its
# cooldown's end, ms); `_v` is bumped on every change, so an instance learns the fleet's breakers
# and cooldowns from the admission it makes anyway.
# KEYS: fleet hash; ARGV: provider, verb, threshold, cooldown ms, probe timeout ms
# verb: allow | failure | success | release → {allowed (0/1), state, failures, ms left open}
BREAKER = _PRELUDE + """
local p, verb = ARGV[1], ARGV[2]
local threshold, cooldown, probe_timeout = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local h = KEYS[1]
local f = redis.call('HMGET', h, p .. '|s', p .. '|f', p .. '|o', p .. '|q')
local state, failures = f[1] or 'closed', tonumber(f[2] or '0')
local opened, probe = tonumber(f[3] or '0'), tonumber(f[4] or '-1')
local allowed, changed = 1, false
local function set(s, n, o, q)
  state, failures, opened, probe = s, n, o, q
  redis.call('HSET', h, p .. '|s', s, p .. '|f', n, p .. '|o', o, p .. '|q', q)
  changed = true
end
if verb == 'allow' then
  if state == 'open' then
    if now - opened < cooldown then allowed = 0 else set('half_open', failures, opened, now) end
  elseif state == 'half_open' then
    if probe >= 0 and now - probe < probe_timeout then allowed = 0
    else set('half_open', failures, opened, now) end
  end
elseif verb == 'failure' then
  if state == 'closed' then
    if failures + 1 >= threshold then set('open', failures + 1, now, -1)
    else set('closed', failures + 1, opened, -1) end
  elseif state == 'half_open' then set('open', failures + 1, now, -1) end
elseif verb == 'success' then
  if state ~= 'closed' or failures > 0 then set('closed', 0, 0, -1) end
elseif verb == 'release' then
  if state == 'half_open' then set('half_open', failures, opened, -1) end
end
if changed then redis.call('HINCRBY', h, '_v', 1) end
local left = 0
if state == 'open' then left = math.max(0, cooldown - (now - opened)) end
return {allowed, state, failures, left}
"""

# KEYS: fleet hash; ARGV: provider, key label, seconds → ms the key now cools. Never shortens a
# longer cooldown; drops the provider's cooldowns that are over.
COOL = _PRELUDE + """
local h, field = KEYS[1], ARGV[1] .. '#' .. ARGV[2]
local want = now + math.ceil(tonumber(ARGV[3]) * 1000)
local until_ = tonumber(redis.call('HGET', h, field) or '0')
if want > until_ then
  until_ = want
  redis.call('HSET', h, field, until_)
end
local all = redis.call('HGETALL', h)
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, #ARGV[1] + 1) == ARGV[1] .. '#' and tonumber(all[i + 1]) <= now then
    redis.call('HDEL', h, f)
  end
end
redis.call('HINCRBY', h, '_v', 1)
return until_ - now
"""
