package redisstore

import "github.com/redis/rueidis"

// The Lua scripts. Each runs atomically on the node that owns the slot of
// its first key. Scripts on a user's records take the user's records hash,
// {u:<uid>}:S, as their first key and derive the names of the user's other
// keys from it by replacing its suffix: every such name starts with the same
// hash tag, so it is on the same slot.
//
// Numbers cross into Lua as strings and are compared after tonumber (exact
// for milliseconds up to 2^53); they are written back as the strings they
// came as, never as formatted Lua numbers.

// prelude is shared by the scripts on a user's records.
const prelude = `
-- hdr reads a record's header: ExpiresAt, pointer deadline, LastSeenAt,
-- and the position of what follows.
local function hdr(v)
  return struct.unpack('>ddd', v)
end
local function extend(k, at)
  local t = redis.call('PEXPIRETIME', k)
  if t == -1 or (t >= 0 and t < tonumber(at)) then redis.call('PEXPIREAT', k, at) end
end
local base = string.sub(KEYS[1], 1, -3)
-- drop removes the session in field f (whose record is v) and its family.
local function drop(f, v)
  local e, p, l, pos = hdr(v)
  redis.call('HDEL', KEYS[1], f)
  local fam = base .. ':f:' .. f
  local tokens = redis.call('HKEYS', fam)
  redis.call('DEL', fam)
  return e, string.sub(v, pos, pos + 31), tokens
end
-- sidOf is the session ID that a field name stands for (see idField).
local function sidOf(f)
  if #f == 16 then
    return (string.gsub(f, '.', function(c) return string.format('%02x', string.byte(c)) end))
  end
  return (string.gsub(string.sub(f, 2), '%x%x', function(h) return string.char(tonumber(h, 16)) end))
end
`

// createScript stores a session, and forgets the user's sessions that
// have expired.
// KEYS: records, family. ARGV: now, record, ExpiresAt, pointer deadline,
// field, prune sample size.
// It returns {old live (0/1), old hash, old ExpiresAt, dropped token hashes}.
// A live session with the same ID keeps its refresh-token family; any other
// family under that ID (of an ended session) is dropped, so that it never
// comes back. A session whose ExpiresAt has passed is not stored.
var createScript = rueidis.NewLuaScript(prelude + `
local now = tonumber(ARGV[1])
local e = tonumber(ARGV[3])
local f = ARGV[5]
local oldLive, oldHash, oldE, tokens = 0, '', 0, {}
local old = redis.call('HGET', KEYS[1], f)
if old then
  local oe, op, ol, pos = hdr(old)
  if oe > now then oldLive, oldHash, oldE = 1, string.sub(old, pos, pos + 31), oe end
end
if oldLive == 0 or e <= now then
  tokens = redis.call('HKEYS', KEYS[2])
  redis.call('DEL', KEYS[2])
end
-- A sample, so that a user with very many sessions costs no more: stale
-- records stay at a small fraction of the live ones (see pruneSample).
local some = redis.call('HRANDFIELD', KEYS[1], ARGV[6], 'WITHVALUES')
for i = 1, #some, 2 do
  if some[i] ~= f and hdr(some[i + 1]) <= now then
    redis.call('HDEL', KEYS[1], some[i])
    redis.call('DEL', base .. ':f:' .. some[i])
  end
end
if e > now then
  redis.call('HSET', KEYS[1], f, ARGV[2])
  extend(KEYS[1], ARGV[4])
else
  redis.call('HDEL', KEYS[1], f)
end
return {oldLive, oldHash, oldE, tokens}
`)

// touchScript sets a live session's LastSeenAt and ExpiresAt.
// KEYS: records. ARGV: now, ExpiresAt, LastSeenAt, field.
// It returns {0} if the session is gone or expired; {1, hash, old
// ExpiresAt} when touched; {3, hash, old ExpiresAt} when touched past its
// pointer deadline (the caller extends the pointer, then the deadline, with
// extendScript); {2, hash, old ExpiresAt, dropped token hashes} when the new
// ExpiresAt has passed and the session was removed.
var touchScript = rueidis.NewLuaScript(prelude + `
local now = tonumber(ARGV[1])
local v = redis.call('HGET', KEYS[1], ARGV[4])
if not v then return {0} end
local oe, op, ol, pos = hdr(v)
if oe <= now then return {0} end
local e = tonumber(ARGV[2])
if e <= now then
  local _, hash, tokens = drop(ARGV[4], v)
  return {2, hash, oe, tokens}
end
redis.call('HSET', KEYS[1], ARGV[4], struct.pack('>ddd', e, op, tonumber(ARGV[3])) .. string.sub(v, pos))
local hash = string.sub(v, pos, pos + 31)
if e > op then return {3, hash, oe} end
return {1, hash, oe}
`)

// extendScript moves a session's pointer deadline (and its user's records
// hash's TTL) to a later one, once its pointer has been extended.
// KEYS: records. ARGV: field, deadline.
var extendScript = rueidis.NewLuaScript(prelude + `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local e, p, l, pos = hdr(v)
if tonumber(ARGV[2]) <= p then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], struct.pack('>ddd', e, tonumber(ARGV[2]), l) .. string.sub(v, pos))
extend(KEYS[1], ARGV[2])
return 1
`)

// endScript removes a session with its refresh-token family.
// KEYS: records, pending. ARGV: now, field, retention (ms), revoke ("1" to
// record a live session's revocation as pending), session ID.
// It returns {found (0/1), live (0/1), hash, ExpiresAt, dropped token
// hashes, pending revocations (flat: id, at, id, at...)}.
var endScript = rueidis.NewLuaScript(prelude + `
local now = tonumber(ARGV[1])
local out = {0, 0, '', 0, {}}
local v = redis.call('HGET', KEYS[1], ARGV[2])
if v then
  -- The revocation is recorded before the session goes, so that no failure
  -- in between can lose it.
  local live = 0
  if hdr(v) > now then
    live = 1
    if ARGV[4] == '1' then
      redis.call('ZADD', KEYS[2], ARGV[1], ARGV[5])
      redis.call('PEXPIRE', KEYS[2], ARGV[3])
    end
  end
  local e, hash, tokens = drop(ARGV[2], v)
  out = {1, live, hash, e, tokens}
end
out[6] = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
return out
`)

// endUserScript removes every session of a user but one, with their
// families, and records the live ones' revocations as pending.
// KEYS: records, pending. ARGV: now, the field of the session to keep (or
// ""), retention (ms).
// It returns {removed (flat: field, record, live), dropped token hashes,
// pending revocations (flat: id, at...)}.
var endUserScript = rueidis.NewLuaScript(prelude + `
local now = tonumber(ARGV[1])
local gone, tokens = {}, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  if f ~= ARGV[2] then
    local live = 0
    if hdr(v) > now then
      live = 1
      redis.call('ZADD', KEYS[2], ARGV[1], sidOf(f))
      redis.call('PEXPIRE', KEYS[2], ARGV[3])
    end
    local _, _, toks = drop(f, v)
    for _, t in ipairs(toks) do tokens[#tokens + 1] = t end
    gone[#gone + 1] = f
    gone[#gone + 1] = v
    gone[#gone + 1] = live
  end
end
return {gone, tokens, redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')}
`)

// setPointerScript stores a secret-hash pointer in its bucket, and forgets
// the bucket's pointers whose deadline has passed.
// KEYS: bucket. ARGV: now, field, value, deadline, prune sample size.
var setPointerScript = rueidis.NewLuaScript(`
local now = tonumber(ARGV[1])
local all = redis.call('HRANDFIELD', KEYS[1], ARGV[5], 'WITHVALUES')
for i = 1, #all, 2 do
  local d = tonumber(string.match(all[i + 1], '^(%-?%d+):'))
  if all[i] ~= ARGV[2] and (d == nil or d <= now) then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
local t = redis.call('PEXPIRETIME', KEYS[1])
if t == -1 or (t >= 0 and t < tonumber(ARGV[4])) then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
return 0
`)

// clearPendingScript removes revocations from a user's pending set once
// they are in the log, unless the session was revoked again meanwhile (its
// score changed).
// KEYS: pending. ARGV: id, at, id, at...
var clearPendingScript = rueidis.NewLuaScript(`
for i = 1, #ARGV, 2 do
  local at = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if at and tonumber(at) == tonumber(ARGV[i + 1]) then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 0
`)

// tokenPrelude parses a refresh token's value.
const tokenPrelude = `
local function parts(v)
  local t = {}
  for x in string.gmatch(v, '[^:]+') do t[#t + 1] = x end
  return t
end
-- A value of 2 or 3 parts is a current token, of 4 or 5 a retired one
-- (see encodeToken); the generation is the last of 3 or 5 parts, else 0.
local function generation(p)
  if #p == 3 or #p == 5 then return tonumber(p[#p]) end
  return 0
end
local function sessionLive(k, f, now)
  local v = redis.call('HGET', k, f)
  if not v then return false end
  return struct.unpack('>d', v) > now
end
`

// createTokenScript stores a refresh token in its session's family.
// KEYS: records, family. ARGV: now, token hash (hex), value, ExpiresAt,
// the session's field.
// It returns 1 when stored (or when expired already, storing nothing), 0
// if the session is gone or expired, -1 if the hash is in use.
var createTokenScript = rueidis.NewLuaScript(tokenPrelude + `
local now = tonumber(ARGV[1])
if not sessionLive(KEYS[1], ARGV[5], now) then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return -1 end
if tonumber(ARGV[4]) > now then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  local t = redis.call('PEXPIRETIME', KEYS[2])
  if t == -1 or t < tonumber(ARGV[4]) then redis.call('PEXPIREAT', KEYS[2], ARGV[4]) end
end
return 1
`)

// rotateScript retires the current token old and stores next in its place,
// as one compare-and-swap.
// KEYS: records, family. ARGV: now, old hash (hex), next hash (hex), next
// value without its generation (<CreatedAt>:<ExpiresAt>), next ExpiresAt,
// RetiredAt, the session's field, how many retired tokens to keep.
// It returns {0} if old is not a live token of a live session, {-1} if
// next's hash is in use, {2, old value, successor current (0/1)} if old was
// retired already, and {1, hashes of the retired tokens it forgot} when
// rotated.
var rotateScript = rueidis.NewLuaScript(tokenPrelude + `
local now = tonumber(ARGV[1])
if not sessionLive(KEYS[1], ARGV[7], now) then return {0} end
local ov = redis.call('HGET', KEYS[2], ARGV[2])
if not ov then return {0} end
local p = parts(ov)
if tonumber(p[2]) <= now then return {0} end
if #p >= 4 then
  local sv = redis.call('HGET', KEYS[2], p[4])
  local current = 0
  if sv and #parts(sv) <= 3 then current = 1 end
  return {2, ov, current}
end
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return {-1} end
local gen = generation(p)
redis.call('HSET', KEYS[2],
  ARGV[2], p[1] .. ':' .. p[2] .. ':' .. ARGV[6] .. ':' .. ARGV[3] .. ':' .. string.format('%d', gen),
  ARGV[3], ARGV[4] .. ':' .. string.format('%d', gen + 1))
local t = redis.call('PEXPIRETIME', KEYS[2])
if t == -1 or t < tonumber(ARGV[5]) then redis.call('PEXPIREAT', KEYS[2], ARGV[5]) end
-- Keep the family to its current token and the newest retired ones: a
-- client refreshing for ever must not grow it (and the script that ends
-- it) without bound.
local dropped = {}
local keep = tonumber(ARGV[8])
local n = redis.call('HLEN', KEYS[2])
if n > keep + 1 then
  -- The oldest are the heads of the chains of successors (retired tokens
  -- that are nobody's successor); forget them along their chains.
  local all = redis.call('HGETALL', KEYS[2])
  local succ, isSucc, heads = {}, {}, {}
  for i = 1, #all, 2 do
    local q = parts(all[i + 1])
    if #q >= 4 then
      succ[all[i]] = q[4]
      isSucc[q[4]] = true
    end
  end
  for h in pairs(succ) do
    if not isSucc[h] then heads[#heads + 1] = h end
  end
  table.sort(heads)
  local excess = n - keep - 1
  while excess > 0 and #heads > 0 do
    local h = table.remove(heads, 1)
    redis.call('HDEL', KEYS[2], h)
    dropped[#dropped + 1] = h
    excess = excess - 1
    if succ[succ[h]] then heads[#heads + 1] = succ[h] end
  end
end
return {1, dropped}
`)

// appendScript appends revocations to the log, each at most once however
// often it is asked (a retry after a lost answer, two callers flushing the
// same pending set), and trims the log to the retention by stream ID, which
// is Redis's clock.
// KEYS: the log. ARGV: retention (ms), how long to remember an appended
// revocation (ms), channel, then id, at, id, at...
// It returns how many it appended.
var appendScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local minid = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1]))
local prefix = string.sub(KEYS[1], 1, -4)
local n = 0
for i = 4, #ARGV, 2 do
  local id, at = ARGV[i], ARGV[i + 1]
  local seen = prefix .. 'd:' .. at .. ':' .. id
  -- A script is not rolled back when a command fails: append first, then
  -- remember, so that a failed append is not remembered as done.
  if redis.call('EXISTS', seen) == 0 then
    redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*', 's', id, 't', at)
    redis.call('SET', seen, '1', 'PX', ARGV[2])
    redis.call('PUBLISH', ARGV[3], id)
    n = n + 1
  end
end
return n
`)

// countAdjustScript adds to the live-session counter by deadline minute.
// KEYS: count, buckets. ARGV: bucket, delta, bucket, delta...
var countAdjustScript = rueidis.NewLuaScript(`
for i = 1, #ARGV, 2 do
  local b, d = ARGV[i], ARGV[i + 1]
  local n = redis.call('HINCRBY', KEYS[1], b, d)
  redis.call('HINCRBY', KEYS[1], 'total', d)
  if n == 0 then
    redis.call('HDEL', KEYS[1], b)
    redis.call('ZREM', KEYS[2], b)
  else
    redis.call('ZADD', KEYS[2], b, b)
  end
end
return 0
`)

// countScript drops the buckets of minutes that have ended from the total
// and returns the total.
// KEYS: count, buckets. ARGV: the current minute.
var countScript = rueidis.NewLuaScript(`
for _, b in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])) do
  local n = redis.call('HGET', KEYS[1], b)
  if n then redis.call('HINCRBY', KEYS[1], 'total', -tonumber(n)) end
  redis.call('HDEL', KEYS[1], b)
  redis.call('ZREM', KEYS[2], b)
end
return tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
`)

// hitScript counts an attempt in key's window, starting the window with
// the first attempt. KEYS: key. ARGV: window (ms). It returns {count,
// milliseconds left}.
var hitScript = rueidis.NewLuaScript(`
local c = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
return {c, redis.call('PTTL', KEYS[1])}
`)

// forgiveScript takes an attempt back, never going below zero.
// KEYS: key.
var forgiveScript = rueidis.NewLuaScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0
`)
