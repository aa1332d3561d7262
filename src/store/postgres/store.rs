//! The `TokenStore` operations of the PostgreSQL store: each one statement (a function of
//! the schema's where it writes several tables) or one transaction, run by `call`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::cache::{digest, Lookup, Ticket};
use super::call::{step, transaction, Failure, Step};
use super::errors::{has_nul, nul_refused};
use super::rows::{
    read_access, read_access_linked, read_client, read_client_id, read_code, read_only_new,
    read_pending, read_refresh, read_refresh_linked, read_removed, read_rotation, read_stats,
    scopes_json, Columns,
};
use super::runtime::{end_now, runtime, spawn_noted, AssertSend};
use super::schema::quote;
use super::PostgresStore;
use crate::error::{Result, StoreError};
use crate::model::{
    is_expired, AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken,
    RotateRequest, Rotation, Stats,
};
use crate::store::buckets::FINE_BUCKET_BITS;
use crate::ops::{Answer, Call, Driven};
use crate::store::TokenStore;

/// What `probe` finds.
enum Probe {
    Answer(Option<AccessToken>),
    Server(Option<Ticket>),
}

/// A write of this many tokens or more may bring the tables' statistics up to date (see
/// `analyze_after`).
const BULK_ROWS: usize = 1000;
/// How long `analyze_after` waits for a table's lock, in ms.
const ANALYZE_LOCK_WAIT_MS: u32 = 100;
/// The tables `analyze_after` brings up to date, the one the planner needs most first.
const ANALYZED: [&str; 5] = [
    "access_tokens",
    "refresh_tokens",
    "nts_users",
    "nts_refresh_families",
    "nts_token_links",
];

/// How long the automatic cleanup waits for the locks under which a bucket is refined ahead
/// (writers that come meanwhile wait behind it), in ms.
const AHEAD_WAIT_MS: i32 = 100;

/// A statement of a transaction: its SQL and its parameters with their types, unnamed.
macro_rules! q {
    ($client:expr, $sql:expr $(, $v:expr => $t:ident)* $(,)?) => {
        async move { $client.query_typed(&$sql, &[$((&$v as &(dyn ToSql + Sync), Type::$t)),*]).await }
    };
}

/// A call's one statement: named and prepared once per connection where allowed (see
/// `Session::run`).
macro_rules! p {
    ($client:expr, $sql:expr $(, $v:expr => $t:ident)* $(,)?) => {
        async move { $client.run(&$sql, &[$((&$v as &(dyn ToSql + Sync), Type::$t)),*]).await }
    };
}

impl TokenStore for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> Option<String> {
        self.target().ok().map(|t| t.shown.clone())
    }

    fn open(&self) -> Result<bool> {
        self.call(true, async |_, _| Ok(()))?;
        Ok(self.opened.swap(false, Ordering::AcqRel))
    }

    /// Closes every kept connection, its socket closed before this returns (those in use
    /// close when their call ends); the next call connects again.
    fn close(&self) -> Result<()> {
        self.stop_listener();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.migrated.store(false, Ordering::Release);
        let kept = std::mem::take(&mut *self.idle.lock().map_err(|_| StoreError::Poisoned)?);
        end_now(kept);
        Ok(())
    }

    /// One round trip: the batch is first resolved here to the rows it leaves (a later
    /// token replaces an earlier one with its string; a refresh string given again leaves
    /// the earlier token), then written by one call of `nts_store_access_tokens` (one
    /// statement, so one transaction), whose set-based statements keep their plans.
    fn store_access_tokens(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        runtime()?.block_on(self.store_access_tokens_async(tokens, now))
    }

    fn get_access_token(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        match self.probe(token, now) {
            Probe::Answer(found) => Ok(found),
            Probe::Server(ticket) => runtime()?.block_on(self.read_and_keep(token, now, ticket)),
        }
    }

    /// The calls a server makes per request, each a task of the I/O runtime's, run by
    /// whichever thread runs the runtime (a synchronous call on this thread too, which may be
    /// waiting for the connection this call holds); the caller's future awaits its end,
    /// outside tokio's budget (see `store::later::turn`). Cleanup, getStats' preparation,
    /// backups and `open` go to the pool.
    fn later(self: Arc<Self>, call: Call, now: i64) -> Driven {
        let Ok(rt) = runtime() else {
            return Driven::Back(Box::new(call));
        };
        let _inside = rt.enter();
        let part: Pin<Box<dyn Future<Output = Result<Answer>>>> = match call {
            Call::GetAccessToken { token, .. } => Box::pin(async move {
                let found = match self.probe(&token, now) {
                    Probe::Answer(found) => found,
                    Probe::Server(ticket) => self.read_and_keep(&token, now, ticket).await?,
                };
                Ok(Answer::AccessTokenText(found.as_ref().map(crate::wire::access_token)))
            }),
            Call::StoreAccessTokens(tokens) => Box::pin(async move {
                self.store_access_tokens_async(&tokens, now).await?;
                Ok(Answer::Done)
            }),
            Call::StoreAuthorizationCode(code, data) => Box::pin(async move {
                self.store_authorization_code_async(&code, &data).await?;
                Ok(Answer::Done)
            }),
            Call::ConsumeAuthorizationCode { code, .. } => Box::pin(async move {
                let taken = self.take_authorization_code_async(&code, now).await?;
                Ok(Answer::AuthorizationCode(taken))
            }),
            Call::GetRefreshToken(token) => Box::pin(async move {
                let found = self.read_refresh_token_async(&token, now, false).await?;
                Ok(Answer::RefreshToken(found))
            }),
            Call::RevokeRefreshToken(token) => Box::pin(async move {
                self.revoke_refresh_token_async(&token).await?;
                Ok(Answer::Done)
            }),
            Call::DeleteToken(token) => Box::pin(async move {
                self.delete_token_async(&token).await?;
                Ok(Answer::Done)
            }),
            Call::DeleteUserTokens(user) => Box::pin(async move {
                let removed = self.delete_user_tokens_async(&user).await?;
                Ok(Answer::Count(usize::try_from(removed).unwrap_or(usize::MAX)))
            }),
            Call::Stats => Box::pin(async move { Ok(Answer::Stats(self.stats_async(now).await?)) }),
            Call::RotateRefreshToken(request) => Box::pin(async move {
                Ok(Answer::Rotation(self.rotate_async(&request, now).await?))
            }),
            Call::PutClient(client) => Box::pin(async move {
                self.put_client_async(&client).await?;
                Ok(Answer::Done)
            }),
            Call::GetClient(id) => {
                Box::pin(async move { Ok(Answer::Client(self.get_client_async(&id).await?)) })
            }
            Call::ClientIds => Box::pin(async move { Ok(Answer::Ids(self.client_ids_async().await?)) }),
            Call::StorePendingAuthorization { state, data, ttl_ms } => Box::pin(async move {
                let until = now.saturating_add(ttl_ms);
                self.store_pending_authorization_async(&state, &data, until, now)
                    .await?;
                Ok(Answer::Done)
            }),
            Call::TakePendingAuthorization(state) => Box::pin(async move {
                Ok(Answer::Text(self.take_pending_authorization_async(&state, now).await?))
            }),
            other => return Driven::Back(Box::new(other)),
        };
        // SAFETY: what `part` holds across its awaits is `Send` (see `AssertSend`).
        let part = spawn_noted(unsafe { AssertSend::new(part) });
        Driven::Later(Box::pin(tokio::task::unconstrained(async move {
            part.await
                .unwrap_or(Err(StoreError::Internal("the PostgreSQL I/O task failed")))
        })))
    }

    /// Read from the server, never from the cache (which keeps no links): only the sealed
    /// layer reads this, and a sealed store's cache holds nothing.
    fn get_access_token_linked(&self, token: &str, now: i64) -> Result<Option<AccessToken>> {
        if has_nul(&[token]) {
            return Ok(None);
        }
        self.read_access_token(token, now, true)
    }

    fn get_access_token_at_hand(&self, token: &str, now: i64) -> Option<Option<String>> {
        if has_nul(&[token]) {
            return Some(None);
        }
        // The same lookup as `get_access_token`'s first step: a hit only while the cache
        // is trusted (see `cache`); anything else goes to the server.
        match self.cache.lookup(token, now) {
            Lookup::Hit(t) => Some(Some(crate::wire::access_token(&t))),
            Lookup::Miss(_) => None,
        }
    }

    fn store_authorization_code(&self, code: &str, d: &AuthorizationCode) -> Result<()> {
        runtime()?.block_on(self.store_authorization_code_async(code, d))
    }

    /// One statement that deletes and returns: of any number of concurrent takes, on any
    /// number of hosts, one gets the row. Never retried: its outcome may be unknown.
    fn take_authorization_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        runtime()?.block_on(self.take_authorization_code_async(code, now))
    }

    fn get_refresh_token(&self, refresh_token: &str, now: i64) -> Result<Option<RefreshToken>> {
        self.read_refresh_token(refresh_token, now, false)
    }

    fn get_refresh_token_linked(
        &self,
        refresh_token: &str,
        now: i64,
    ) -> Result<Option<RefreshToken>> {
        self.read_refresh_token(refresh_token, now, true)
    }

    fn revoke_refresh_token(&self, refresh_token: &str) -> Result<()> {
        runtime()?.block_on(self.revoke_refresh_token_async(refresh_token))
    }

    fn delete_token(&self, token: &str) -> Result<()> {
        runtime()?.block_on(self.delete_token_async(token))
    }

    fn delete_user_tokens(&self, user_id: &str) -> Result<u64> {
        runtime()?.block_on(self.delete_user_tokens_async(user_id))
    }

    /// The expired rows first; the counters' past buckets are folded and the family records
    /// of gone tokens pruned once nothing expired is left (each scans its whole table).
    fn cleanup_expired(&self, now: i64, limit: usize) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let fine = now >> FINE_BUCKET_BITS;
        let removed = self.call(false, async |c, sql| {
            let steps: Vec<Step> = vec![step(q!(c, sql.cleanup, now => INT8, limit => INT8))];
            let results = transaction(c, self.settings.query_timeout, steps).await?;
            let removed = results.first().and_then(|rows| rows.first());
            Ok(removed.map(read_removed).transpose()?.unwrap_or(0))
        });
        // The tokens expired at `now` (which another clock may not think expired).
        self.cache.barrier();
        let removed = removed?;
        if removed < limit {
            self.call(false, async |c, sql| {
                let steps: Vec<Step> = vec![
                    step(q!(c, sql.fold_counts, fine => INT8)),
                    step(q!(c, sql.drop_zero_counts, fine => INT8)),
                    step(q!(c, sql.prune_families, limit => INT8)),
                    step(q!(c, sql.prune_retired, limit => INT8)),
                ];
                transaction(c, self.settings.query_timeout, steps).await?;
                Ok(())
            })?;
        }
        Ok(usize::try_from(removed).unwrap_or(0))
    }

    /// A transaction costs a round trip or more, and holds only the rows it removes (which
    /// other instances' cleanups skip): longer slices than SQLite's.
    fn cleanup_slice(&self) -> Duration {
        Duration::from_millis(100)
    }

    fn rotate_refresh_token(&self, request: &RotateRequest, now: i64) -> Result<Rotation> {
        self.rotate(request, now)
    }

    fn put_client(&self, client: &ClientRecord) -> Result<()> {
        runtime()?.block_on(self.put_client_async(client))
    }

    fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        runtime()?.block_on(self.get_client_async(client_id))
    }

    fn client_ids(&self) -> Result<Vec<String>> {
        runtime()?.block_on(self.client_ids_async())
    }

    fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        runtime()?.block_on(self.store_pending_authorization_async(state, data, expires_at, now))
    }

    fn seal_mark(&self) -> Result<(Option<String>, bool)> {
        self.read_seal_mark()
    }

    /// Keeps `NewAccessToken::links` in `nts_token_links` (migration 11).
    fn seals_tokens(&self) -> bool {
        true
    }

    fn set_seal_mark(&self, old: Option<&str>, new: &str, only_if_empty: bool) -> Result<bool> {
        self.swap_seal_mark(old, new, only_if_empty)
    }

    fn take_pending_authorization(&self, state: &str, now: i64) -> Result<Option<String>> {
        runtime()?.block_on(self.take_pending_authorization_async(state, now))
    }

    /// Refines ahead the crowded 4-second buckets due before the next automatic cleanup
    /// (at most 4, each in a statement of its own; see migration 10), so that the getStats
    /// calls in them sum fine counts without refining. A bucket whose locks stay busy for
    /// `AHEAD_WAIT_MS` is left to the getStats that finds it.
    fn prepare_stats(&self, now: i64, until: i64) -> Result<()> {
        let due = self.call(false, async |c, sql| {
            let rows = p!(c, sql.due_refines, now => INT8, until => INT8).await?;
            rows.iter()
                .map(|r| r.try_get::<_, i64>(0))
                .collect::<std::result::Result<Vec<i64>, _>>()
                .map_err(Failure::Pg)
        })?;
        let current = now >> FINE_BUCKET_BITS;
        for bucket in due {
            self.call(false, async |c, sql| {
                p!(c, sql.refine, current => INT8, bucket => INT8, AHEAD_WAIT_MS => INT4).await?;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn stats(&self, now: i64) -> Result<Stats> {
        runtime()?.block_on(self.stats_async(now))
    }
}


/// The operations' bodies, as futures: run to their end by the synchronous calls above
/// (`block_on`), or spawned on the I/O runtime by `later` (the Promise API, driven from the
/// JS thread).
impl PostgresStore {
    async fn store_access_tokens_async(&self, tokens: &[NewAccessToken], now: i64) -> Result<()> {
        for t in tokens {
            let refresh = t.refresh_token.as_deref().unwrap_or("");
            let user = t.user_id.as_deref().unwrap_or("");
            let links = t.links.as_deref().unwrap_or("");
            let resource = t.resource.as_deref().unwrap_or("");
            let extra = t.extra.as_deref().unwrap_or("");
            if has_nul(&[&t.token, refresh, &t.api_key, user, &t.client_id, links, resource, extra])
            {
                return Err(nul_refused());
            }
        }
        let rows = Columns::resolve(tokens);
        // Sealed tokens' links go with them (migration 11); a store in clear sends the
        // statement it always did.
        let linked = rows.links.iter().any(Option::is_some);
        // Tokens with a resource or extra (migration 12): the function that sets them too.
        let granted = rows.resource.iter().chain(&rows.extra).any(Option::is_some);
        let done = self.call_async(false, async |c, sql| {
            let r = &rows;
            let links = linked.then_some(&r.links);
            // One statement: the function's writes commit together.
            let answer = if granted {
                p!(c, sql.store_granted_tokens,
                    r.token => TEXT_ARRAY, r.api_key => TEXT_ARRAY, r.user_id => TEXT_ARRAY,
                    r.client_id => TEXT_ARRAY, r.scopes => TEXT_ARRAY,
                    r.refresh_token => TEXT_ARRAY, r.expires_at => INT8_ARRAY, now => INT8,
                    links => TEXT_ARRAY, r.resource => TEXT_ARRAY, r.extra => TEXT_ARRAY)
                .await?
            } else if linked {
                p!(c, sql.store_linked_tokens,
                    r.token => TEXT_ARRAY, r.api_key => TEXT_ARRAY, r.user_id => TEXT_ARRAY,
                    r.client_id => TEXT_ARRAY, r.scopes => TEXT_ARRAY,
                    r.refresh_token => TEXT_ARRAY, r.expires_at => INT8_ARRAY, now => INT8,
                    r.links => TEXT_ARRAY)
                .await?
            } else {
                p!(c, sql.store_access_tokens,
                    r.token => TEXT_ARRAY, r.api_key => TEXT_ARRAY, r.user_id => TEXT_ARRAY,
                    r.client_id => TEXT_ARRAY, r.scopes => TEXT_ARRAY,
                    r.refresh_token => TEXT_ARRAY, r.expires_at => INT8_ARRAY, now => INT8)
                .await?
            };
            Ok(answer.first().is_some_and(read_only_new))
        })
        .await;
        match done {
            // Only new rows (a token and refresh string not stored before): nothing a
            // cache holds changed, so no ping need come back before the cache answers.
            Ok(true) => {
                for t in tokens {
                    self.cache.invalidate(Some(digest(&t.token)));
                }
            }
            // A token replaced, and the token that held a refresh string given again (or
            // the outcome unknown).
            _ => self.cache.barrier(),
        }
        if done.is_ok() {
            self.analyze_after(tokens.len()).await;
        }
        done.map(|_| ())
    }

    /// After a bulk write of `rows` tokens: the tables' statistics brought up to date
    /// (`ANALYZE`) when the write is at least `BULK_ROWS` and at least a tenth of what
    /// the planner last counted (autovacuum's rule, which acts only at its next round, up to
    /// a minute later). Until then the planner knows nothing of the new rows: a string's
    /// key is a hash index, from which it cannot tell that a string matches one row, so the
    /// statements that join tokens to refresh tokens were planned as scans of the whole
    /// table (10k tokens: revokeRefreshToken 10 ms, getRefreshToken 1.2 ms; with statistics
    /// 0.6 and 0.12 ms; benchmark/PROFILE.md). Best effort: a failure leaves it to autovacuum.
    /// Each table in a transaction of its own, so that one another session holds leaves
    /// only that table to autovacuum.
    pub(super) async fn analyze_after(&self, rows: usize) {
        if rows < BULK_ROWS {
            return;
        }
        let s = quote(&self.settings.schema);
        let table = format!("{s}.access_tokens");
        let wait = format!("SET LOCAL lock_timeout = {ANALYZE_LOCK_WAIT_MS}");
        let analyze: Vec<String> = ANALYZED
            .iter()
            .map(|t| format!("ANALYZE {s}.{t}"))
            .collect();
        let _ = self
            .call_async(false, async |c, _| {
                let counted: f32 = c
                    .query_typed_one(
                        "SELECT reltuples FROM pg_class WHERE oid = $1::regclass",
                        &[(&table, Type::TEXT)],
                    )
                    .await?
                    .try_get(0)?;
                // Never analyzed: -1. A table another session holds (autovacuum, a
                // migration, another instance's ANALYZE) is waited for at most
                // ANALYZE_LOCK_WAIT_MS.
                if counted < 0.0 || rows as f32 * 10.0 >= counted {
                    for one in &analyze {
                        let steps: Vec<Step> = vec![
                            step(c.query_typed(&wait, &[])),
                            step(c.query_typed(one, &[])),
                        ];
                        match transaction(c, self.settings.query_timeout, steps).await {
                            // That table is left to autovacuum; the next one is tried.
                            Err(Failure::Pg(e)) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {}
                            done => {
                                done?;
                            }
                        }
                    }
                }
                Ok(())
            })
            .await;
    }

    async fn store_authorization_code_async(&self, code: &str, d: &AuthorizationCode) -> Result<()> {
        let optional = |v: &Option<String>| v.clone().unwrap_or_default();
        if has_nul(&[
            code,
            &optional(&d.user_id),
            &d.api_key,
            &d.client_id,
            &d.redirect_uri,
            &optional(&d.code_challenge),
            &optional(&d.code_challenge_method),
            &optional(&d.resource),
            &optional(&d.extra),
        ]) {
            return Err(nul_refused());
        }
        let scopes = scopes_json(&d.scopes);
        let scopes = scopes.as_str();
        self.call_async(false, async |c, sql| {
            // One statement: the function's delete and insert commit together.
            if d.resource.is_some() || d.extra.is_some() {
                p!(c, sql.store_granted_code, code => TEXT, d.user_id => TEXT,
                    d.api_key => TEXT, d.client_id => TEXT, d.redirect_uri => TEXT,
                    d.code_challenge => TEXT, d.code_challenge_method => TEXT,
                    scopes => TEXT, d.expires_at => INT8, d.created_at => INT8,
                    d.resource => TEXT, d.extra => TEXT)
                .await?;
            } else {
                p!(c, sql.store_code, code => TEXT, d.user_id => TEXT, d.api_key => TEXT,
                    d.client_id => TEXT, d.redirect_uri => TEXT, d.code_challenge => TEXT,
                    d.code_challenge_method => TEXT, scopes => TEXT, d.expires_at => INT8,
                    d.created_at => INT8)
                .await?;
            }
            Ok(())
        })
        .await
    }

    async fn take_authorization_code_async(&self, code: &str, now: i64) -> Result<Option<AuthorizationCode>> {
        if has_nul(&[code]) {
            return Ok(None);
        }
        let taken = self.call_async(false, async |c, sql| {
            let rows = p!(c, sql.take_code, code => TEXT).await?;
            rows.first().map(read_code).transpose().map_err(Failure::Pg)
        })
        .await?;
        Ok(taken.filter(|d| !is_expired(Some(d.expires_at), now)))
    }

    async fn revoke_refresh_token_async(&self, refresh_token: &str) -> Result<()> {
        if has_nul(&[refresh_token]) {
            return Ok(());
        }
        let done = self.call_async(false, async |c, sql| {
            p!(c, sql.revoke_refresh, refresh_token => TEXT).await?;
            Ok(())
        })
        .await;
        self.cache.barrier();
        done
    }

    async fn delete_token_async(&self, token: &str) -> Result<()> {
        if has_nul(&[token]) {
            return Ok(());
        }
        let done = self.call_async(false, async |c, sql| {
            p!(c, sql.delete_access, token => TEXT).await?;
            Ok(())
        })
        .await;
        // It removes this token's row (and its refresh token's) only.
        self.cache.invalidate(Some(digest(token)));
        done
    }

    async fn delete_user_tokens_async(&self, user_id: &str) -> Result<u64> {
        if user_id.is_empty() || has_nul(&[user_id]) {
            return Ok(0);
        }
        let done = self.call_async(false, async |c, sql| {
            let rows = p!(c, sql.delete_user, user_id => TEXT).await?;
            let n = match rows.first() {
                Some(row) => row.try_get::<_, i64>(0)?,
                None => 0,
            };
            Ok(n.max(0) as u64)
        })
        .await;
        self.cache.barrier();
        done
    }

    async fn put_client_async(&self, client: &ClientRecord) -> Result<()> {
        if has_nul(&[&client.client_id]) {
            return Err(nul_refused());
        }
        self.call_async(false, async |c, sql| {
            p!(c, sql.put_client, client.client_id => TEXT, client.secret_digest => TEXT,
                client.metadata => TEXT, client.created_at => INT8)
            .await?;
            Ok(())
        })
        .await
    }

    async fn get_client_async(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        if has_nul(&[client_id]) {
            return Ok(None);
        }
        self.call_async(true, async |c, sql| {
            let rows = p!(c, sql.get_client, client_id => TEXT).await?;
            rows.first()
                .map(read_client)
                .transpose()
                .map_err(Failure::Pg)
        })
        .await
    }

    async fn client_ids_async(&self) -> Result<Vec<String>> {
        self.call_async(true, async |c, sql| {
            let rows = p!(c, sql.client_ids).await?;
            rows.iter()
                .map(|r| read_client_id(r).map_err(Failure::Pg))
                .collect()
        })
        .await
    }

    async fn store_pending_authorization_async(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
        _now: i64,
    ) -> Result<()> {
        if has_nul(&[state]) {
            return Err(nul_refused());
        }
        self.call_async(false, async |c, sql| {
            p!(c, sql.store_pending, state => TEXT, data => TEXT, expires_at => INT8).await?;
            Ok(())
        })
        .await
    }

    async fn take_pending_authorization_async(&self, state: &str, now: i64) -> Result<Option<String>> {
        if has_nul(&[state]) {
            return Ok(None);
        }
        let taken = self.call_async(false, async |c, sql| {
            let rows = p!(c, sql.take_pending, state => TEXT).await?;
            rows.first()
                .map(read_pending)
                .transpose()
                .map_err(Failure::Pg)
        })
        .await?;
        Ok(taken
            .filter(|(_, at)| !is_expired(Some(*at), now))
            .map(|(d, _)| d))
    }

    async fn stats_async(&self, now: i64) -> Result<Stats> {
        self.call_async(true, async |c, sql| {
            let rows = p!(c, sql.stats, now => INT8).await?;
            let r = rows
                .first()
                .ok_or(StoreError::Internal("getStats returned no row"))?;
            // One statement: the counters and the rows are one snapshot.
            Ok(read_stats(r)?)
        })
        .await
    }
}

impl PostgresStore {
    /// `get_access_token`'s first step, without I/O: the answer (a token with a NUL, which
    /// no row holds; a hit of the trusted cache), or the server's to give.
    fn probe(&self, token: &str, now: i64) -> Probe {
        if has_nul(&[token]) {
            return Probe::Answer(None);
        }
        self.ensure_listener();
        match self.cache.lookup(token, now) {
            Lookup::Hit(t) => Probe::Answer(Some(t)),
            Lookup::Miss(ticket) => Probe::Server(ticket),
        }
    }

    /// `get_access_token`'s read from the server, its answer kept in the cache when the
    /// ticket allows.
    async fn read_and_keep(
        &self,
        token: &str,
        now: i64,
        ticket: Option<Ticket>,
    ) -> Result<Option<AccessToken>> {
        let found = self.read_access_token_async(token, now, false).await?;
        if let (Some(t), Some(ticket)) = (&found, ticket) {
            self.cache.fill(ticket, token, t);
        }
        Ok(found)
    }

    /// The live access token read from the server (removed if found expired); `linked`:
    /// with its links (migration 11).
    fn read_access_token(&self, token: &str, now: i64, linked: bool) -> Result<Option<AccessToken>> {
        runtime()?.block_on(self.read_access_token_async(token, now, linked))
    }

    async fn read_access_token_async(
        &self,
        token: &str,
        now: i64,
        linked: bool,
    ) -> Result<Option<AccessToken>> {
        let found = self.call_async(true, async |c, sql| {
            let rows = if linked {
                p!(c, sql.select_access_linked, token => TEXT).await?
            } else {
                p!(c, sql.select_access, token => TEXT).await?
            };
            let read = if linked { read_access_linked } else { read_access };
            rows.first().map(read).transpose().map_err(Failure::Pg)
        })
        .await?;
        match found {
            Some(t) if is_expired(t.expires_at, now) => {
                self.remove_if_expired(token, now).await;
                Ok(None)
            }
            found => Ok(found),
        }
    }

    /// getRefreshToken; `linked`: with its access token's links (migration 11).
    fn read_refresh_token(
        &self,
        refresh_token: &str,
        now: i64,
        linked: bool,
    ) -> Result<Option<RefreshToken>> {
        runtime()?.block_on(self.read_refresh_token_async(refresh_token, now, linked))
    }

    async fn read_refresh_token_async(
        &self,
        refresh_token: &str,
        now: i64,
        linked: bool,
    ) -> Result<Option<RefreshToken>> {
        if has_nul(&[refresh_token]) {
            return Ok(None);
        }
        let found = self
            .call_async(true, async |c, sql| {
                let rows = if linked {
                    p!(c, sql.select_refresh_linked, refresh_token => TEXT).await?
                } else {
                    p!(c, sql.select_refresh, refresh_token => TEXT).await?
                };
                let read = if linked { read_refresh_linked } else { read_refresh };
                rows.first()
                    .map(read)
                    .transpose()
                    .map_err(Failure::Pg)
            })
            .await?
            .map(|(r, access)| (access.is_some_and(|at| !is_expired(at, now)), r));
        match found {
            Some((true, r)) => Ok(Some(r)),
            Some((false, r)) => {
                self.remove_if_expired(&r.access_token, now).await;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn rotate(&self, req: &RotateRequest, now: i64) -> Result<Rotation> {
        runtime()?.block_on(self.rotate_async(req, now))
    }

    async fn rotate_async(&self, req: &RotateRequest, now: i64) -> Result<Rotation> {
        if has_nul(&[&req.refresh_token]) {
            return Ok(Rotation::Unknown);
        }
        let links = req.links.as_deref();
        if has_nul(&[&req.new_access_token, &req.new_refresh_token, links.unwrap_or("")]) {
            return Err(nul_refused());
        }
        let done = self.call_async(false, async |c, sql| {
            // Sealed tokens: the new pair's links are added in the same statement; the
            // grant's resource and extra are carried to it there too.
            let rows = p!(c, sql.rotate, req.refresh_token => TEXT,
                req.new_access_token => TEXT, req.new_refresh_token => TEXT,
                req.expires_at => INT8, now => INT8, req.grace_ms => INT8, links => TEXT)
            .await?;
            let r = rows
                .first()
                .ok_or(StoreError::Internal("nts_rotate returned no row"))?;
            Ok(read_rotation(r, req)?)
        })
        .await;
        // The old access token, or the whole family (a reuse).
        self.cache.barrier();
        done
    }

    /// Removes an access token that a read found expired, unless it was replaced since.
    /// The read's answer does not depend on it: a failure is left for cleanup.
    async fn remove_if_expired(&self, token: &str, now: i64) {
        let _ = self
            .call_async(false, async |c, sql| {
                p!(c, sql.delete_access_if_expired, token => TEXT, now => INT8).await?;
                Ok(())
            })
            .await;
        self.cache.invalidate(Some(digest(token)));
    }
}
