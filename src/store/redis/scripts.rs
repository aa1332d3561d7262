//! The Lua scripts: every write that touches more than one key is one script, which Redis
//! runs alone (no other command in between, on any connection), so that it is atomic across
//! processes and hosts: never a read in one round trip and a write in the next.
//!
//! The keys, each after the store's prefix `P` (`ARGV[1]` of every script):
//!
//! - `at:<token>`: an access token, a hash: `k` API key, `c` client, `s` scopes (JSON), `t`
//!   created at, and when they are set `u` user, `r` refresh token, `e` expires at (ms),
//!   `p` resource, `x` extra, `l` links (sealed), `f` the rotation family of its refresh
//!   token (absent: the refresh token is its family's first). Expires (`PEXPIRE`) after `e`.
//! - `rt:<refresh token>`: the access token it belongs to; expires with it.
//! - `exp`: every access token by expiry (a sorted set, `inf` for none): `getStats`'s count
//!   (`ZCOUNT`, O(log n)) and the cleanup's order.
//! - `u:<user>`: the user's tokens by expiry; expires with the last of them.
//! - `users`: every user by the expiry of their last token: `getStats`'s users (`ZCOUNT`).
//! - `code:<code>`: a code, a hash: `d` its record (JSON), `u` its user; expires with it.
//!   `codes`: every code by expiry; `uc:<user>`: the user's codes.
//! - `pend:<state>`: a pending authorization's data; expires with it. `pend`: by expiry.
//! - `ret:<refresh token>`: a refresh token rotated away: `f` its family, `a` when.
//!   `retired`: all of them, in the order the cleanup checks them next.
//! - `mem:<family>`: the refresh tokens rotations issued in the family (checked against
//!   `rt:` and `at:`…`f` when read: an entry whose token is gone is stale, not a member).
//! - `cl:<client id>`: a client, a hash: `m` metadata, `t` created at, `d` secret digest;
//!   `clients`: their ids in registration order, numbered by `clseq`.
//! - `meta`: `seal`, the mark of encryption at rest.
//!
//! Redis removes expired keys by itself (`PEXPIRE`, an hour after their expiry by the
//! caller's clock: until
//! then a read that finds one expired removes it and its entries, and the cleanup finds what
//! nobody read, as on the other stores), so no cleanup is needed for memory;
//! the sorted sets keep an entry for a token Redis removed until the cleanup (or the next
//! write of the same token) removes it, and every count leaves out entries whose expiry
//! is past, so such an entry is never counted. A read checks the expiry itself too: a key
//! Redis has not yet removed is never served after its time.

use std::sync::OnceLock;

/// The keys of the layout above that a store keeps while it holds any row, a client or its
/// mark (`RedisStore::exists` looks for them): each spelled `P .. '<name>'` by the scripts
/// (`every_index_key_is_one_the_scripts_write` checks it).
pub(super) const INDEX_KEYS: [&str; 8] = [
    "exp", "users", "codes", "pend", "retired", "clients", "clseq", "meta",
];

/// A script: its source (the shared functions, then its own body) and its digest, learned
/// from the first server that loads it (the SHA-1 of the source, the same on every server).
pub(super) struct Script {
    body: &'static str,
    source: OnceLock<String>,
    sha: OnceLock<String>,
}

impl Script {
    const fn new(body: &'static str) -> Script {
        Script {
            body,
            source: OnceLock::new(),
            sha: OnceLock::new(),
        }
    }

    pub(super) fn source(&self) -> &str {
        self.source.get_or_init(|| with_prelude(PRELUDE, self.body))
    }

    pub(super) fn sha(&self) -> Option<String> {
        self.sha.get().cloned()
    }

    pub(super) fn set_sha(&self, sha: String) -> String {
        self.sha.get_or_init(|| sha).clone()
    }
}

/// `body` after the definitions of `prelude` it uses, directly or through another one, in
/// the prelude's order. Redis runs a script's whole source at every call, so each local
/// function defined is a closure made and collected per call: the whole prelude cost 2.8 µs
/// a call on this machine (`return 1` alone 3.8 µs, with the prelude 6.5 µs). A definition is
/// a top-level `local` line with the comment lines before it and the indented lines after
/// it; it is used where its name appears as a whole word (a name in a comment counts too: at
/// worst a definition too many).
fn with_prelude(prelude: &str, body: &str) -> String {
    let mut defs: Vec<(&str, String)> = Vec::new();
    let mut comment = String::new();
    for line in prelude.lines() {
        if line.starts_with("--") {
            comment.push_str(line);
            comment.push('\n');
        } else if let Some(rest) = line.strip_prefix("local ") {
            let rest = rest.strip_prefix("function ").unwrap_or(rest);
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            defs.push((&rest[..end], std::mem::take(&mut comment) + line + "\n"));
        } else if let Some((_, text)) = defs.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut used = vec![false; defs.len()];
    let mut todo = vec![body.to_owned()];
    while let Some(text) = todo.pop() {
        for (i, (name, def)) in defs.iter().enumerate() {
            if !used[i] && names(&text, name) {
                used[i] = true;
                todo.push(def.clone());
            }
        }
    }
    let mut out = String::new();
    for ((_, def), _) in defs.iter().zip(&used).filter(|(_, u)| **u) {
        out.push_str(def);
    }
    out.push_str(body);
    out
}

/// Whether `name` appears in `text` as a whole word (not inside a longer name).
fn names(text: &str, name: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(name).any(|(at, _)| {
        !word(text[..at].chars().next_back()) && !word(text[at + name.len()..].chars().next())
    })
}

/// The functions scripts share; each script gets those it uses (`with_prelude`).
const PRELUDE: &str = r#"
local P = ARGV[1]
-- How long after its expiry Redis keeps a record (ms): until then a read that finds it
-- expired removes it with its entries, and the cleanup finds what nobody read, as on the
-- other stores; after it, Redis removes it by itself.
local MARGIN = 3600000
-- How long from `now` a record that expires at `e` (ms, a string) is kept: until MARGIN after
-- it, counted from `now`: the caller's clock decides how long a record lives, Redis's only
-- when it goes.
local function ttl_ms(e, now)
  local ms = tonumber(e) - tonumber(now) + MARGIN
  if ms < 1 then ms = 1 end
  return string.format('%.0f', ms)
end
-- The key expires `ttl_ms(e, now)` from now ('inf': never).
local function expire_at(key, e, now)
  if e == 'inf' then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIRE', key, ttl_ms(e, now))
  end
end
-- An optional argument: '' for none, '=' and the value for one.
local function opt(v)
  if v == nil or v == '' then return nil end
  return string.sub(v, 2)
end
-- The user's entry in `users` (and the expiry of `u:<user>`) from their latest token.
local function user_refresh(u)
  local uk = P .. 'u:' .. u
  local top = redis.call('ZREVRANGE', uk, 0, 0, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', P .. 'users', u)
    return
  end
  redis.call('ZADD', P .. 'users', top[2], u)
  if top[2] == 'inf' then redis.call('PERSIST', uk) end
end
-- Removes an access token, its refresh token and its entries; 1 if it was there.
local function remove_token(t)
  local k = P .. 'at:' .. t
  local h = redis.call('HMGET', k, 'u', 'r')
  redis.call('ZREM', P .. 'exp', t)
  if redis.call('DEL', k) == 0 then return 0 end
  if h[2] then
    local rk = P .. 'rt:' .. h[2]
    if redis.call('GET', rk) == t then redis.call('DEL', rk) end
  end
  if h[1] then
    redis.call('ZREM', P .. 'u:' .. h[1], t)
    user_refresh(h[1])
  end
  return 1
end
-- Stores an access token (nil: a field not set), replacing one of the same string; its
-- refresh token, held by another token, leaves that one.
local function store_one(t, r, k, u, c, s, e, p, x, l, f, now)
  local hk = P .. 'at:' .. t
  -- Only a token stored again has a hash and entries to remove first (one EXISTS for a
  -- new one; an `exp` entry left by a hash Redis removed gets its new score below).
  if redis.call('EXISTS', hk) == 1 then remove_token(t) end
  if r then
    -- The refresh key set, and the token that held it (if another) read in the same
    -- command: it leaves that one. SET without an expiry leaves none (it clears the key's).
    local rk = P .. 'rt:' .. r
    local prev
    if e then prev = redis.call('SET', rk, t, 'PX', ttl_ms(e, now), 'GET')
    else prev = redis.call('SET', rk, t, 'GET') end
    if prev and prev ~= t then redis.call('HDEL', P .. 'at:' .. prev, 'r', 'l', 'f') end
  end
  local h = {'k', k, 'c', c, 's', s, 't', now}
  local function add(name, v)
    if v then
      h[#h + 1] = name
      h[#h + 1] = v
    end
  end
  add('u', u) add('r', r) add('e', e) add('p', p) add('x', x) add('l', l) add('f', f)
  redis.call('HSET', hk, unpack(h))
  if e then expire_at(hk, e, now) end
  local score = e or 'inf'
  redis.call('ZADD', P .. 'exp', score, t)
  if u then
    local uk = P .. 'u:' .. u
    redis.call('ZADD', uk, score, t)
    -- The user's latest expiry: this token's when it moved the entry forward (or made it),
    -- else the one already there.
    local top = score
    if redis.call('ZADD', P .. 'users', 'GT', 'CH', score, u) == 0 then
      top = redis.call('ZSCORE', P .. 'users', u)
    end
    expire_at(uk, top, now)
  end
end
-- A store sealed by this version (`meta` `seal`: 'sealed v2 ...', see `store::sealed`)
-- refuses a value written in clear (not 'nts1:' or 'nts2:'): what a process without keys
-- that opened the prefix before it was sealed writes. As SQLite's and PostgreSQL's
-- triggers; called before the script writes anything (a script's writes are not undone).
-- One HGET per script, only in the scripts that write an API key or pending data.
local sealed_v2
local function sealed()
  if sealed_v2 == nil then
    local m = redis.call('HGET', P .. 'meta', 'seal')
    sealed_v2 = m and string.sub(m, 1, 10) == 'sealed v2 ' or false
  end
  return sealed_v2
end
local function refuse_clear(v)
  if sealed() and not string.find(v or '', '^nts[12]:') then
    error({err = 'NTSCLEAR a row in clear refused by a sealed token store'})
  end
end
local function remove_code(c)
  local ck = P .. 'code:' .. c
  local u = redis.call('HGET', ck, 'u')
  redis.call('DEL', ck)
  redis.call('ZREM', P .. 'codes', c)
  if u then redis.call('SREM', P .. 'uc:' .. u, c) end
end
-- Whether a family has a live member (stale entries dropped on the way).
local function family_live(f)
  local mk = P .. 'mem:' .. f
  local live = false
  for _, m in ipairs(redis.call('SMEMBERS', mk)) do
    local t = redis.call('GET', P .. 'rt:' .. m)
    if t and redis.call('HGET', P .. 'at:' .. t, 'f') == f then
      live = true
    else
      redis.call('SREM', mk, m)
    end
  end
  return live
end
-- Puts a retired refresh token at the end of the cleanup's queue.
local function enqueue_retired(rt)
  local last = redis.call('ZRANGE', P .. 'retired', -1, -1, 'WITHSCORES')
  local n = 1
  if #last > 0 then n = tonumber(last[2]) + 1 end
  redis.call('ZADD', P .. 'retired', n, rt)
end
-- One field of a token packed by the store: '-:' for none, else '<length>:' and the bytes.
local function unpack_fields(s, n)
  local out, at = {}, 1
  for i = 1, n do
    local colon = string.find(s, ':', at, true)
    local head = string.sub(s, at, colon - 1)
    if head == '-' then
      out[i] = false
      at = colon + 1
    else
      local len = tonumber(head)
      out[i] = string.sub(s, colon + 1, colon + len)
      at = colon + len + 1
    end
  end
  return out
end
local function v(x)
  if x == false then return nil end
  return x
end
-- Whether `a` sorts after `b` as Redis orders members of one score (bytes, then length).
local function sorts_after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
-- A page of the sorted set `index` (`ZRANGE … WITHSCORES`): at most `n` entries after the
-- cursor, the score `s` and member `m` of the last entry the previous page read (both ''
-- for the first page), in Redis's own order (score, then member byte by byte). Exact when
-- many entries share a score and when the cursor's own entry was removed since (a page
-- that removes what it reads): the page starts right after it, found by `ZRANK` when it is
-- still there with its score, else by a binary search among the entries of its score.
-- An entry there with the same score from the first page to the last is read exactly once.
local function page_after(index, s, m, n)
  local key = P .. index
  local from = 0
  if s ~= '' then
    if redis.call('ZSCORE', key, m) == s then
      from = redis.call('ZRANK', key, m) + 1
    else
      local lo = redis.call('ZCOUNT', key, '-inf', '(' .. s)
      local hi = lo + redis.call('ZCOUNT', key, s, s)
      while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if sorts_after(redis.call('ZRANGE', key, mid, mid)[1], m) then hi = mid else lo = mid + 1 end
      end
      from = lo
    end
  end
  return redis.call('ZRANGE', key, from, from + tonumber(n) - 1, 'WITHSCORES')
end
-- The answer of a script that walks an index a page at a time (`tally` in snapshot.rs):
-- {entries read, the last one's score and member (the next page's cursor), counts…}.
local function tallied(page, counts)
  local out = {#page / 2, page[#page] or '', page[#page - 1] or ''}
  for _, c in ipairs(counts) do out[#out + 1] = c end
  return out
end
-- Whether any row but a client's is stored.
local function holds()
  for _, k in ipairs({'exp', 'codes', 'pend', 'retired'}) do
    if redis.call('ZCARD', P .. k) > 0 then return true end
  end
  return false
end
"#;

/// `store_access_tokens`: one packed argument per token, in order (its token, refresh,
/// key, user, client, scopes, expiry, resource, extra, links, created at).
pub(super) static STORE_TOKENS: Script = Script::new(
    r#"
local all = {}
for i = 2, #ARGV do
  all[i] = unpack_fields(ARGV[i], 11)
  refuse_clear(all[i][3])
end
for i = 2, #ARGV do
  local a = all[i]
  store_one(a[1], v(a[2]), a[3], v(a[4]), a[5], a[6], v(a[7]), v(a[8]), v(a[9]), v(a[10]), nil, a[11])
end
return #ARGV - 1
"#,
);

/// A token a read found expired at ARGV 3: removed unless stored again since (ARGV 2).
pub(super) static REMOVE_IF_EXPIRED: Script = Script::new(
    r#"
local e = redis.call('HGET', P .. 'at:' .. ARGV[2], 'e')
if e and tonumber(e) <= tonumber(ARGV[3]) then return remove_token(ARGV[2]) end
return 0
"#,
);

/// A refresh token (ARGV 2): its access token and that token's fields, or nil.
pub(super) static GET_REFRESH: Script = Script::new(
    r#"
local t = redis.call('GET', P .. 'rt:' .. ARGV[2])
if not t then return false end
return {t, redis.call('HGETALL', P .. 'at:' .. t)}
"#,
);

/// Removes the refresh token ARGV 2 and its access token.
pub(super) static REVOKE_REFRESH: Script = Script::new(
    r#"
local t = redis.call('GET', P .. 'rt:' .. ARGV[2])
if t and redis.call('HGET', P .. 'at:' .. t, 'r') == ARGV[2] then return remove_token(t) end
return 0
"#,
);

/// Removes the access token ARGV 2 and its refresh token.
pub(super) static DELETE_TOKEN: Script = Script::new(
    r#"
return remove_token(ARGV[2])
"#,
);

/// Removes every token and code of the user ARGV 2; returns how many tokens.
pub(super) static DELETE_USER: Script = Script::new(
    r#"
local u = ARGV[2]
local uk = P .. 'u:' .. u
local n = 0
for _, t in ipairs(redis.call('ZRANGE', uk, 0, -1)) do
  if redis.call('HGET', P .. 'at:' .. t, 'u') == u then n = n + remove_token(t) end
end
redis.call('DEL', uk)
redis.call('ZREM', P .. 'users', u)
local ck = P .. 'uc:' .. u
for _, c in ipairs(redis.call('SMEMBERS', ck)) do
  if redis.call('HGET', P .. 'code:' .. c, 'u') == u then remove_code(c) end
end
redis.call('DEL', ck)
return n
"#,
);

/// Stores the code ARGV 2 (user ARGV 3, optional; record ARGV 4; expiry ARGV 5; now,
/// its creation time, ARGV 6).
pub(super) static STORE_CODE: Script = Script::new(
    r#"
local c, u, e, now = ARGV[2], opt(ARGV[3]), ARGV[5], ARGV[6]
if sealed() then refuse_clear(cjson.decode(ARGV[4])['k']) end
local ck = P .. 'code:' .. c
-- A code stored again replaces the first (codes are random: seldom). Without its hash,
-- its `codes` entry gets the new expiry below and its user's set keeps a stale member,
-- which every reader checks against the hash's user.
if redis.call('EXISTS', ck) == 1 then remove_code(c) end
if u then redis.call('HSET', ck, 'd', ARGV[4], 'u', u) else redis.call('HSET', ck, 'd', ARGV[4]) end
expire_at(ck, e, now)
redis.call('ZADD', P .. 'codes', e, c)
if u then
  -- The user's set lives as long as their latest code: its expiry set on a set that has
  -- none (NX: a new one, the common case, since a user's code is taken before the next is
  -- stored and the set goes with its last member), or moved forward (GT).
  local uc, ms = P .. 'uc:' .. u, ttl_ms(e, now)
  redis.call('SADD', uc, c)
  if redis.call('PEXPIRE', uc, ms, 'NX') == 0 then redis.call('PEXPIRE', uc, ms, 'GT') end
end
return 1
"#,
);

/// Takes the code ARGV 2: its record, or nil; gone either way.
pub(super) static TAKE_CODE: Script = Script::new(
    r#"
local c = ARGV[2]
local h = redis.call('HMGET', P .. 'code:' .. c, 'd', 'u')
redis.call('DEL', P .. 'code:' .. c)
redis.call('ZREM', P .. 'codes', c)
if h[2] then redis.call('SREM', P .. 'uc:' .. h[2], c) end
return h[1]
"#,
);

/// Stores the pending authorization ARGV 2 (data ARGV 3) until ARGV 4 (now: ARGV 5).
pub(super) static STORE_PENDING: Script = Script::new(
    r#"
refuse_clear(ARGV[3])
local k = P .. 'pend:' .. ARGV[2]
redis.call('SET', k, ARGV[3])
expire_at(k, ARGV[4], ARGV[5])
redis.call('ZADD', P .. 'pend', ARGV[4], ARGV[2])
return 1
"#,
);

/// Takes the pending authorization ARGV 2: {data, expiry}, or nil; gone either way.
pub(super) static TAKE_PENDING: Script = Script::new(
    r#"
local k = P .. 'pend:' .. ARGV[2]
local d = redis.call('GET', k)
local e = redis.call('ZSCORE', P .. 'pend', ARGV[2])
redis.call('DEL', k)
redis.call('ZREM', P .. 'pend', ARGV[2])
if not d then return false end
return {d, e or ''}
"#,
);

/// Removes at most ARGV 3 tokens, codes and pending authorizations expired at ARGV 2
/// (in that order); then, if fewer, forgets as many retired refresh tokens whose family
/// has no live token left, and users whose last token expired. Returns how many it removed.
pub(super) static CLEANUP: Script = Script::new(
    r#"
local now, limit = ARGV[2], tonumber(ARGV[3])
local removed = 0
local function sweep(index, each)
  if removed >= limit then return end
  local due = redis.call('ZRANGEBYSCORE', P .. index, '-inf', now, 'LIMIT', 0, limit - removed)
  for _, m in ipairs(due) do
    each(m)
    redis.call('ZREM', P .. index, m)
    removed = removed + 1
  end
end
sweep('exp', remove_token)
sweep('codes', remove_code)
sweep('pend', function(s) redis.call('DEL', P .. 'pend:' .. s) end)
if removed < limit then
  for _, rt in ipairs(redis.call('ZRANGE', P .. 'retired', 0, limit - 1)) do
    local f = redis.call('HGET', P .. 'ret:' .. rt, 'f')
    if f and family_live(f) then
      enqueue_retired(rt)
    else
      redis.call('DEL', P .. 'ret:' .. rt)
      redis.call('ZREM', P .. 'retired', rt)
      if f then redis.call('DEL', P .. 'mem:' .. f) end
    end
  end
  redis.call('ZREMRANGEBYSCORE', P .. 'users', '-inf', now)
end
return removed
"#,
);

/// The refresh grant: ARGV 2 the refresh token, 3 and 4 the new pair, 5 its expiry
/// (optional), 6 now, 7 the grace period (ms), 8 its links (optional). Answers
/// {'rotated', key, user, client, scopes}, {'grace'}, {'reused', revoked} or {'unknown'}.
pub(super) static ROTATE: Script = Script::new(
    r#"
local old, nat, nrt, e, now, grace, links = ARGV[2], ARGV[3], ARGV[4], opt(ARGV[5]), ARGV[6], tonumber(ARGV[7]), opt(ARGV[8])
local t = redis.call('GET', P .. 'rt:' .. old)
if t then
  local h = redis.call('HMGET', P .. 'at:' .. t, 'k', 'u', 'c', 's', 'e', 'p', 'x', 'f', 'r')
  if not h[1] or h[9] ~= old then return {'unknown'} end
  if h[5] and tonumber(h[5]) <= tonumber(now) then
    remove_token(t)
    return {'unknown'}
  end
  local family = h[8] or old
  remove_token(t)
  redis.call('DEL', P .. 'ret:' .. old)
  redis.call('HSET', P .. 'ret:' .. old, 'f', family, 'a', now)
  enqueue_retired(old)
  store_one(nat, nrt, h[1], v(h[2]), h[3], h[4], e, v(h[6]), v(h[7]), links, family, now)
  redis.call('SADD', P .. 'mem:' .. family, nrt)
  return {'rotated', h[1], h[2], h[3], h[4]}
end
local ret = redis.call('HMGET', P .. 'ret:' .. old, 'f', 'a')
if not ret[1] then return {'unknown'} end
if tonumber(now) - tonumber(ret[2]) < grace then return {'grace'} end
local revoked = 0
local mk = P .. 'mem:' .. ret[1]
for _, m in ipairs(redis.call('SMEMBERS', mk)) do
  local t2 = redis.call('GET', P .. 'rt:' .. m)
  if t2 and redis.call('HGET', P .. 'at:' .. t2, 'f') == ret[1] then
    revoked = revoked + remove_token(t2)
  end
end
redis.call('DEL', mk)
return {'reused', revoked}
"#,
);

/// Live tokens and users at ARGV 2: {tokens, users}, each a `ZCOUNT` (O(log n)).
pub(super) static STATS: Script = Script::new(
    r#"
local above = '(' .. ARGV[2]
return {redis.call('ZCOUNT', P .. 'exp', above, '+inf'), redis.call('ZCOUNT', P .. 'users', above, '+inf')}
"#,
);

/// Stores the client ARGV 2 (digest ARGV 3, optional; metadata ARGV 4; created ARGV 5),
/// numbered at its first registration.
pub(super) static PUT_CLIENT: Script = Script::new(
    r#"
local k = P .. 'cl:' .. ARGV[2]
local d = opt(ARGV[3])
redis.call('DEL', k)
if d then
  redis.call('HSET', k, 'm', ARGV[4], 't', ARGV[5], 'd', d)
else
  redis.call('HSET', k, 'm', ARGV[4], 't', ARGV[5])
end
if not redis.call('ZSCORE', P .. 'clients', ARGV[2]) then
  redis.call('ZADD', P .. 'clients', redis.call('INCR', P .. 'clseq'), ARGV[2])
end
return 1
"#,
);

/// The mark of encryption at rest: {mark or nil, holds rows (0/1)}.
pub(super) static SEAL_MARK: Script = Script::new(
    r#"
local h = 0
if holds() then h = 1 end
return {redis.call('HGET', P .. 'meta', 'seal'), h}
"#,
);

/// Sets the mark to ARGV 3 if it is ARGV 2 (optional) and, when ARGV 4 is '1', no row
/// but a client's is stored: 1 if it did.
pub(super) static SET_SEAL_MARK: Script = Script::new(
    r#"
local cur = redis.call('HGET', P .. 'meta', 'seal')
local old = opt(ARGV[2])
if (cur or nil) ~= old then return 0 end
if ARGV[4] == '1' and holds() then return 0 end
redis.call('HSET', P .. 'meta', 'seal', ARGV[3])
return 1
"#,
);

/// Sets the mark to ARGV 2 (optional: removed when absent), whatever it was: a copy
/// brings its source's with its rows.
pub(super) static PUT_SEAL_MARK: Script = Script::new(
    r#"
local mark = opt(ARGV[2])
if mark then
  redis.call('HSET', P .. 'meta', 'seal', mark)
else
  redis.call('HDEL', P .. 'meta', 'seal')
end
return 1
"#,
);

/// How many records one page of the index ARGV 2 (`exp`, `codes`, `pend` or `retired`)
/// holds, after the cursor ARGV 3 and 4, at most ARGV 5 entries (`page_after`): for `exp`,
/// {access tokens, refresh tokens, refresh tokens in a family}; for the others, the records
/// still there. Expired ones Redis has not removed yet are counted. `tallied`'s answer.
pub(super) static COUNT_PAGE: Script = Script::new(
    r#"
local index = ARGV[2]
local page = page_after(index, ARGV[3], ARGV[4], ARGV[5])
if index == 'exp' then
  local n = {0, 0, 0}
  for i = 1, #page, 2 do
    local h = redis.call('HMGET', P .. 'at:' .. page[i], 'k', 'r', 'f')
    if h[1] then
      n[1] = n[1] + 1
      if h[2] then n[2] = n[2] + 1 end
      if h[3] then n[3] = n[3] + 1 end
    end
  end
  return tallied(page, n)
end
local prefix = ({codes = 'code:', pend = 'pend:', retired = 'ret:'})[index]
local c = 0
for i = 1, #page, 2 do c = c + redis.call('EXISTS', P .. prefix .. page[i]) end
return tallied(page, {c})
"#,
);

/// The sizes of the indexes an export pages through and the mark of encryption at rest
/// (nil without one): {tokens, codes, clients, pending, retired, mark}, each a `ZCARD`.
pub(super) static EXPORT_SIZES: Script = Script::new(
    r#"
local n = {}
for i, k in ipairs({'exp', 'codes', 'clients', 'pend', 'retired'}) do
  n[i] = redis.call('ZCARD', P .. k)
end
n[6] = redis.call('HGET', P .. 'meta', 'seal')
return n
"#,
);

/// One page of an export: at most ARGV 5 entries of the index ARGV 2 (`exp`, `codes`,
/// `clients`, `pend` or `retired`) that sort after the cursor, the score ARGV 3 and member
/// ARGV 4 of the last entry the previous page read (both '' for the first page), each with
/// its record read in the same step (a token's hash holds its refresh token and family):
/// {{member, score, record, …}, the mark of encryption at rest (nil without one)}. The
/// record: a token's or client's fields (none when gone), a code's `d`, a pending
/// authorization's data, a retired token's {family, when} (false when gone).
///
/// The order is Redis's own, by score then member byte by byte (`page_after`), so the cursor
/// stays exact when many entries share a score (tokens expiring in the same millisecond, or
/// never) and when its own entry was removed since. An entry there with the same score from
/// the first page to the last is read exactly once.
pub(super) static EXPORT_PAGE: Script = Script::new(
    r#"
local index = ARGV[2]
local page = page_after(index, ARGV[3], ARGV[4], ARGV[5])
local out = {}
for i = 1, #page, 2 do
  local id, d = page[i]
  if index == 'exp' then
    d = redis.call('HGETALL', P .. 'at:' .. id)
  elseif index == 'codes' then
    d = redis.call('HGET', P .. 'code:' .. id, 'd')
  elseif index == 'clients' then
    d = redis.call('HGETALL', P .. 'cl:' .. id)
  elseif index == 'pend' then
    d = redis.call('GET', P .. 'pend:' .. id)
  else
    d = redis.call('HMGET', P .. 'ret:' .. id, 'f', 'a')
  end
  out[#out + 1] = id
  out[#out + 1] = page[i + 1]
  out[#out + 1] = d
end
return {out, redis.call('HGET', P .. 'meta', 'seal')}
"#,
);

/// A family row: the refresh token ARGV 2, if stored, in the family ARGV 3.
pub(super) static IMPORT_FAMILY: Script = Script::new(
    r#"
local t = redis.call('GET', P .. 'rt:' .. ARGV[2])
if t and redis.call('HGET', P .. 'at:' .. t, 'r') == ARGV[2] then
  redis.call('HSET', P .. 'at:' .. t, 'f', ARGV[3])
  redis.call('SADD', P .. 'mem:' .. ARGV[3], ARGV[2])
end
return 1
"#,
);

/// A retired row: the refresh token ARGV 2 rotated away from the family ARGV 3 at ARGV 4.
pub(super) static IMPORT_RETIRED: Script = Script::new(
    r#"
redis.call('DEL', P .. 'ret:' .. ARGV[2])
redis.call('HSET', P .. 'ret:' .. ARGV[2], 'f', ARGV[3], 'a', ARGV[4])
enqueue_retired(ARGV[2])
return 1
"#,
);

/// Removes the tokens (index ARGV 2 `exp`) or codes (`codes`) of the client ARGV 6 among
/// one page of at most ARGV 5 entries after the cursor ARGV 3 and 4 (`page_after`; what it
/// removes leaves the index, and the next page starts after the cursor all the same).
/// `tallied`'s answer, with how many it removed.
pub(super) static REVOKE_CLIENT_PAGE: Script = Script::new(
    r#"
local index, client = ARGV[2], ARGV[6]
local page = page_after(index, ARGV[3], ARGV[4], ARGV[5])
local n = 0
for i = 1, #page, 2 do
  local id = page[i]
  if index == 'exp' then
    if redis.call('HGET', P .. 'at:' .. id, 'c') == client then n = n + remove_token(id) end
  else
    local d = redis.call('HGET', P .. 'code:' .. id, 'd')
    if d and cjson.decode(d).c == client then
      remove_code(id)
      n = n + 1
    end
  end
end
return tallied(page, {n})
"#,
);

#[cfg(test)]
mod tests {
    /// A script gets the definitions it uses and those they use, in the prelude's order,
    /// comments kept; `P` by every script that names it; nothing it does not use.
    #[test]
    fn a_script_gets_the_prelude_it_uses_and_no_more() {
        let prelude = "local P = ARGV[1]\n-- one\nlocal function a(x)\n  return x\nend\n\
                       local function ab(x)\n  return a(x) .. P\nend\nlocal c_v\n\
                       local function c()\n  return c_v\nend\n";
        let got = super::with_prelude(prelude, "return ab(1)\n");
        assert_eq!(
            got,
            "local P = ARGV[1]\n-- one\nlocal function a(x)\n  return x\nend\n\
             local function ab(x)\n  return a(x) .. P\nend\nreturn ab(1)\n"
        );
        let got = super::with_prelude(prelude, "return c() -- not a(\n");
        assert!(got.starts_with("-- one\nlocal function a(x)"), "{got}");
        assert!(got.contains("local c_v\nlocal function c()"), "{got}");
        assert!(!got.contains("ab(") && !got.contains("P ="), "{got}");
        // The real scripts: the export's page gets its cursor, not the token writes.
        let page = super::EXPORT_PAGE.source();
        assert!(page.contains("local function page_after") && page.contains("local function sorts_after"));
        assert!(!page.contains("local function store_one"));
        assert!(super::STORE_TOKENS.source().contains("local function remove_token"));
    }

    /// `INDEX_KEYS` are keys the scripts write, and the layout names: a key renamed in
    /// the scripts and not in the list would make `exists` miss a store.
    #[test]
    fn every_index_key_is_one_the_scripts_write() {
        let text = include_str!("scripts.rs");
        for k in super::INDEX_KEYS {
            assert!(text.contains(&format!("P .. '{k}'")), "{k}: no script spells it");
            assert!(text.contains(&format!("`{k}`")), "{k}: not in the layout");
        }
    }
}
