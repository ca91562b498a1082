-- Budgets, rate limits and revocations of every gateway replica, in one atomic script call.
--
-- ARGV[1] key prefix, ARGV[2] a JSON array of operations, ARGV[3] the time in ms ("" = TIME).
-- The same semantics run in process in gateway/governance/counters.py; the two are tested
-- against each other (tests/unit/test_counters.py). Keys are built here from the prefix, so
-- this runs on a single Redis node (or a primary), not on Redis Cluster.
--
-- A scope ("k:<key id>" or "t:<team>") is three hashes. P .. "q:" .. scope and P .. "t:" ..
-- scope map a second to the requests / tokens admitted in it (at most 61 fields each: hashes
-- this small are listpacks, scanned on every lookup, so the fields read on every request live
-- apart from them). P .. "s:" .. scope:
--   qn, tn          the requests / tokens in the window;  c  the last second whose buckets went
--   dw, d           the UTC day (days since the epoch) and USD spent in it, in nanodollars
--   mw, m           the UTC month (year * 12 + month - 1) and USD spent in it
--   r               nanodollars reserved by requests in flight;  x  "1" once the key is revoked
-- A bucket counts while the current second is at most 60 past it: every request admitted in
-- the last 60 s is counted (at most 1 s longer), so no 60 s window ever holds more than the
-- limit. Reservations: P .. "rz" (request id -> expiry ms), P .. "ra" (request id ->
-- "nanodollars|scope|scope"); an expired one is released by the next call, whoever makes it.
--
-- Operations (arrays) and replies:
--   {"a", rid, prompt_tokens, reserve, day, month, ttl_ms, revocable_scope,
--         {{scope, rpm, tpm, day_limit, month_limit}, ...}}        limits -1 = none
--     -> {1, now, {{qn, tn, d, m, r}, ...}} admitted (values after this request)
--     -> {0, now, reason, scope_index, used, retry_ms}  reason: revoked rpm tpm day month
--   {"s", {rid, ...}, {cost, ...}, {completion_tokens, ...}, day, month, {scope, ...}}
--     -> {1, {{d, m}, ...}}  requests that ended, of one key in one window: their
--        reservations released, their costs and tokens charged, the scopes written once
--   {"s?", ...}  the same, counting only requests whose reservation is still held: a call
--                that timed out may or may not have run, so its settlements replay this way
--   {"seed", scope, day, d, month, m}   the ledger's spend: max(counted, d) in a current window
--   {"x", scope}                        revoke
local P = ARGV[1]
local ops = cjson.decode(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local sec = math.floor(now / 1000)
local SPAN = 61 -- buckets counted: the current second and the 60 before it
local RZ, RA = P .. 'rz', P .. 'ra'

local function int(n) return string.format('%d', n) end

local function release(rid)
  local v = redis.call('HGET', RA, rid)
  if not v then return end
  local amount
  for part in string.gmatch(v, '[^|]+') do
    if not amount then
      amount = tonumber(part)
    else
      redis.call('HINCRBY', P .. 's:' .. part, 'r', int(-amount))
    end
  end
  redis.call('HDEL', RA, rid)
  redis.call('ZREM', RZ, rid)
end

-- a scope's state, with the buckets that left the window dropped
local function load(scope)
  local key = P .. 's:' .. scope
  local v = redis.call('HMGET', key, 'c', 'qn', 'tn', 'dw', 'd', 'mw', 'm', 'r', 'x')
  local st = {
    key = key, qk = P .. 'q:' .. scope, tk = P .. 't:' .. scope,
    c = tonumber(v[1]), qn = tonumber(v[2]) or 0, tn = tonumber(v[3]) or 0,
    dw = tonumber(v[4]) or -1, d = tonumber(v[5]) or 0, mw = tonumber(v[6]) or -1,
    m = tonumber(v[7]) or 0, r = math.max(tonumber(v[8]) or 0, 0), x = v[9],
  }
  local last = sec - SPAN
  if not st.c then
    st.c = last
  elseif last > st.c then
    -- buckets that exist lie in (c, c + SPAN]: at most SPAN of them to drop
    local fields = {}
    for i = st.c + 1, math.min(last, st.c + SPAN) do fields[#fields + 1] = int(i) end
    local qv = redis.call('HMGET', st.qk, unpack(fields))
    local tv = redis.call('HMGET', st.tk, unpack(fields))
    for i = 1, #fields do
      st.qn = st.qn - (tonumber(qv[i]) or 0)
      st.tn = st.tn - (tonumber(tv[i]) or 0)
    end
    redis.call('HDEL', st.qk, unpack(fields))
    redis.call('HDEL', st.tk, unpack(fields))
    if last >= st.c + SPAN then st.qn, st.tn = 0, 0 end
    st.c = last
    redis.call('HSET', key, 'c', int(st.c), 'qn', int(st.qn), 'tn', int(st.tn))
  end
  return st
end

-- when enough of the window has expired for `need` more (requests or tokens) to fit
local function retry_ms(st, buckets, need)
  local fields = {}
  for i = st.c + 1, sec do fields[#fields + 1] = int(i) end
  local vals = redis.call('HMGET', buckets, unpack(fields))
  local freed = 0
  for i, v in ipairs(vals) do
    freed = freed + (tonumber(v) or 0)
    if freed >= need then return (st.c + i + SPAN) * 1000 - now end
  end
  return -1
end

-- a budget window as an admission sees it: a newer day or month starts from zero; an older
-- one (this replica's clock behind another's) is checked against the newer, never rewinds it
local function roll(stored_window, stored, w)
  if w > stored_window then return w, 0 end
  return stored_window, stored
end

local function current(stored_window, stored, w)
  if stored_window == w then return stored end
  return 0
end

local function admit(op)
  local rid, pt, amount, day, month, ttl, revocable, scopes =
    op[2], op[3], op[4], op[5], op[6], op[7], op[8], op[9]
  local states = {}
  for i, s in ipairs(scopes) do
    local st = load(s[1])
    states[i] = st
    if s[1] == revocable and st.x == '1' then return {0, now, 'revoked', i - 1, 0, -1} end
    local rpm, tpm, dlim, mlim = s[2], s[3], s[4], s[5]
    if rpm >= 0 and st.qn + 1 > rpm then
      return {0, now, 'rpm', i - 1, st.qn, retry_ms(st, st.qk, st.qn + 1 - rpm)}
    end
    if tpm >= 0 and st.tn + pt > tpm then
      local wait = -1
      if pt <= tpm then wait = retry_ms(st, st.tk, st.tn + pt - tpm) end
      return {0, now, 'tpm', i - 1, st.tn, wait}
    end
    st.dw, st.d = roll(st.dw, st.d, day)
    st.mw, st.m = roll(st.mw, st.m, month)
    if dlim >= 0 and st.d + st.r + amount > dlim then return {0, now, 'day', i - 1, st.d, -1} end
    if mlim >= 0 and st.m + st.r + amount > mlim then
      return {0, now, 'month', i - 1, st.m, -1}
    end
  end
  local out, names = {}, {}
  for i, st in ipairs(states) do
    st.qn, st.tn, st.r = st.qn + 1, st.tn + pt, st.r + amount
    redis.call('HINCRBY', st.qk, int(sec), 1)
    if pt > 0 then redis.call('HINCRBY', st.tk, int(sec), int(pt)) end
    redis.call('HSET', st.key, 'c', int(st.c), 'qn', int(st.qn), 'tn', int(st.tn),
      'r', int(st.r), 'dw', int(st.dw), 'd', int(st.d), 'mw', int(st.mw), 'm', int(st.m))
    out[i] = {st.qn, st.tn, st.d, st.m, st.r}
    names[i] = scopes[i][1]
  end
  if amount > 0 then
    redis.call('HSET', RA, rid, int(amount) .. '|' .. table.concat(names, '|'))
    redis.call('ZADD', RZ, int(now + ttl), rid)
  end
  return {1, now, out}
end

local function settle(op, only_held)
  local rids, costs, cts, day, month, scopes = op[2], op[3], op[4], op[5], op[6], op[7]
  local held = redis.call('HMGET', RA, unpack(rids))
  local cost, ct, freed = 0, 0, {}
  for i = 1, #rids do
    local v = held[i]
    if v then
      local amount
      for part in string.gmatch(v, '[^|]+') do
        if not amount then
          amount = tonumber(part)
        else
          freed[part] = (freed[part] or 0) + amount
        end
      end
    end
    if v or not only_held then cost, ct = cost + costs[i], ct + cts[i] end
  end
  redis.call('HDEL', RA, unpack(rids))
  redis.call('ZREM', RZ, unpack(rids))
  for scope, amount in pairs(freed) do
    redis.call('HINCRBY', P .. 's:' .. scope, 'r', int(-amount))
  end
  local out = {}
  for i, scope in ipairs(scopes) do
    local st = load(scope)
    if st.dw == day then
      st.d = st.d + cost
    elseif st.dw < day then -- the first spend of a new day (a past day's window is closed)
      st.dw, st.d = day, cost
    end
    if st.mw == month then
      st.m = st.m + cost
    elseif st.mw < month then
      st.mw, st.m = month, cost
    end
    if ct > 0 then redis.call('HINCRBY', st.tk, int(sec), int(ct)) end
    redis.call('HSET', st.key, 'c', int(st.c), 'tn', int(st.tn + ct),
      'dw', int(st.dw), 'd', int(st.d), 'mw', int(st.mw), 'm', int(st.m))
    out[i] = {current(st.dw, st.d, day), current(st.mw, st.m, month)}
  end
  return {1, out}
end

-- the ledger's spend for a window: replaces an older window, raises a current one to it
local function seed(op)
  local key = P .. 's:' .. op[2]
  local v = redis.call('HMGET', key, 'dw', 'd', 'mw', 'm')
  local dw, mw = tonumber(v[1]) or -1, tonumber(v[3]) or -1
  if op[3] > dw or (op[3] == dw and op[4] > (tonumber(v[2]) or 0)) then
    redis.call('HSET', key, 'dw', int(op[3]), 'd', int(op[4]))
  end
  if op[5] > mw or (op[5] == mw and op[6] > (tonumber(v[4]) or 0)) then
    redis.call('HSET', key, 'mw', int(op[5]), 'm', int(op[6]))
  end
  return {1}
end

local expired = redis.call('ZRANGEBYSCORE', RZ, '-inf', now, 'LIMIT', 0, 256)
for _, rid in ipairs(expired) do release(rid) end

local replies = {}
for i, op in ipairs(ops) do
  local kind = op[1]
  if kind == 'a' then
    replies[i] = admit(op)
  elseif kind == 's' then
    replies[i] = settle(op, false)
  elseif kind == 's?' then
    replies[i] = settle(op, true)
  elseif kind == 'seed' then
    replies[i] = seed(op)
  elseif kind == 'x' then
    redis.call('HSET', P .. 's:' .. op[2], 'x', '1')
    replies[i] = {1}
  else
    replies[i] = {0, now, 'unknown operation', 0, 0, -1}
  end
end
return replies
