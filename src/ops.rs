//! The operations, above the stores: the rules every argument must keep (checked once,
//! here, whatever the store), PKCE on consume, and cleanup cut into short transactions.
//! `index.js` checks types first, with messages that name the function and argument;
//! these checks are the ones a caller of the Rust API (or a bug there) could still break.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Result, StoreError};
use crate::model::{
    AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken, RotateRequest, Rotation, Stats,
};
use crate::pkce;
use crate::store::{Later, TokenStore};

/// One call of the API with its arguments. Each operation is written once, in `run`; the
/// napi layer runs it on the calling thread (the synchronous functions) or on a thread of
/// libuv's pool (the Promise API), with the same results and errors; or, for a store that
/// gives its part as a future, as `run_later` (the same checks and finishing steps).
pub enum Call {
    /// Opens the store now if it is closed.
    Open,
    StoreAccessTokens(Vec<NewAccessToken>),
    GetAccessToken {
        token: String,
        /// From the JS thread's synchronous call, which ends the store's held reads at the
        /// end of its turn (`TokenStore::get_access_token_text_holding`).
        hold: bool,
    },
    StoreAuthorizationCode(String, AuthorizationCode),
    ConsumeAuthorizationCode {
        code: String,
        verifier: Option<String>,
    },
    GetRefreshToken(String),
    RevokeRefreshToken(String),
    DeleteToken(String),
    DeleteUserTokens(String),
    /// Everything expired, in transactions of this many rows.
    CleanupAll(usize),
    /// At most this many expired rows, on the store's background resources; `automatic`
    /// for the automatic cleanup (one process at a time, see `TokenStore::cleanup_expired_as`).
    /// A batch that ends the pass (fewer than `limit`) then prepares getStats for the next
    /// `stats_ahead_ms` (`TokenStore::prepare_stats`; 0: not).
    CleanupBatch {
        limit: usize,
        automatic: bool,
        stats_ahead_ms: i64,
    },
    Stats,
    RotateRefreshToken(RotateRequest),
    PutClient(ClientRecord),
    GetClient(String),
    ClientIds,
    /// A pending authorization (JSON text) kept for `ttl_ms` from now.
    StorePendingAuthorization {
        state: String,
        data: String,
        ttl_ms: i64,
    },
    TakePendingAuthorization(String),
    /// A backup of the store into a new SQLite file (`store::snapshot::backup`), its
    /// progress counted in `progress`; answers its report as JSON text.
    Backup {
        path: std::path::PathBuf,
        options: crate::store::snapshot::BackupOptions,
        progress: std::sync::Arc<crate::store::snapshot::Progress>,
    },
}

/// What a call answers.
pub enum Answer {
    Done,
    Count(usize),
    /// An access token as `wire::access_token` writes it (see `TokenStore::get_access_token_text`).
    AccessTokenText(Option<String>),
    AuthorizationCode(Option<AuthorizationCode>),
    RefreshToken(Option<RefreshToken>),
    Stats(Stats),
    Rotation(Rotation),
    Client(Option<ClientRecord>),
    Ids(Vec<String>),
    /// JSON text as stored (a pending authorization).
    Text(Option<String>),
}

/// A call as a store may run it later (`TokenStore::later`, `run_later`): its future, or the
/// call given back where it cannot (then it goes to the pool).
pub enum Driven {
    Later(Later<Answer>),
    Back(Box<Call>),
}

/// `call`'s answer at `now` if the store has it at hand, without I/O: exactly what `run`
/// would answer (see `TokenStore::get_access_token_at_hand`); `None` when only `run` can
/// tell. The Promise API settles these at once, on the calling thread.
pub fn at_hand(store: &dyn TokenStore, call: &Call, now: i64) -> Option<Answer> {
    match call {
        Call::GetAccessToken { token, .. } => store
            .get_access_token_at_hand(token, now)
            .map(Answer::AccessTokenText),
        _ => None,
    }
}

/// The most tokens one `StoreAccessTokens` may store for `at_once` to take it.
const AT_ONCE_TOKENS: usize = 64;

/// Whether `run` of `call` on `store` is short work on this process's memory alone (a
/// memory store: a `short` call), which the Promise API runs on the calling thread: a
/// hand-off to another thread and back costs more than the work.
pub fn at_once(store: &dyn TokenStore, call: &Call) -> bool {
    store.in_memory() && short(call)
}

/// Whether `call` is short work for the thread that runs it, outside the store's own: not
/// cleanup, a backup, or a batch of more than `AT_ONCE_TOKENS` tokens.
fn short(call: &Call) -> bool {
    match call {
        Call::StoreAccessTokens(tokens) => tokens.len() <= AT_ONCE_TOKENS,
        Call::CleanupAll(_) | Call::CleanupBatch { .. } | Call::Backup { .. } => false,
        _ => true,
    }
}

/// Runs one call at `now` (epoch milliseconds): its arguments checked (`check`), the store's
/// part, then what the call makes of the store's answer (`Finish`).
pub fn run(
    store: &dyn TokenStore,
    cleanup: &BackgroundCleanup,
    call: Call,
    now: i64,
) -> Result<Answer> {
    check(&call)?;
    let finish = Finish::of(&call);
    let part = match call {
        Call::Open => {
            store.open()?;
            Answer::Done
        }
        Call::StoreAccessTokens(tokens) => {
            store.store_access_tokens(&tokens, now)?;
            Answer::Done
        }
        Call::GetAccessToken { token, hold: false } => {
            Answer::AccessTokenText(store.get_access_token_text(&token, now)?)
        }
        Call::GetAccessToken { token, hold: true } => {
            Answer::AccessTokenText(store.get_access_token_text_holding(&token, now)?)
        }
        Call::StoreAuthorizationCode(code, data) => {
            store.store_authorization_code(&code, &data)?;
            Answer::Done
        }
        Call::ConsumeAuthorizationCode { code, .. } => {
            Answer::AuthorizationCode(store.take_authorization_code(&code, now)?)
        }
        Call::GetRefreshToken(token) => Answer::RefreshToken(store.get_refresh_token(&token, now)?),
        Call::RevokeRefreshToken(token) => {
            store.revoke_refresh_token(&token)?;
            Answer::Done
        }
        Call::DeleteToken(token) => {
            store.delete_token(&token)?;
            Answer::Done
        }
        Call::DeleteUserTokens(user) => {
            let removed = store.delete_user_tokens(&user)?;
            Answer::Count(usize::try_from(removed).unwrap_or(usize::MAX))
        }
        Call::CleanupAll(batch) => Answer::Count(cleanup_all(store, now, batch)?),
        Call::CleanupBatch {
            limit,
            automatic,
            stats_ahead_ms,
        } => {
            let limit = limit.max(1);
            let removed = cleanup.batch(store, now, limit, automatic)?;
            if removed < limit && stats_ahead_ms > 0 {
                store.prepare_stats(now, now.saturating_add(stats_ahead_ms))?;
            }
            Answer::Count(removed)
        }
        Call::Stats => Answer::Stats(store.stats(now)?),
        Call::RotateRefreshToken(request) => {
            Answer::Rotation(store.rotate_refresh_token(&request, now)?)
        }
        Call::PutClient(client) => {
            store.put_client(&client)?;
            Answer::Done
        }
        Call::GetClient(id) => Answer::Client(store.get_client(&id)?),
        Call::ClientIds => Answer::Ids(store.client_ids()?),
        Call::StorePendingAuthorization {
            state,
            data,
            ttl_ms,
        } => {
            store.store_pending_authorization(&state, &data, now.saturating_add(ttl_ms), now)?;
            Answer::Done
        }
        Call::TakePendingAuthorization(state) => {
            Answer::Text(store.take_pending_authorization(&state, now)?)
        }
        Call::Backup {
            path,
            options,
            progress,
        } => {
            progress.reset();
            let report = crate::store::snapshot::backup(store, &path, options, &progress)?;
            Answer::Text(Some(report.to_json().to_string()))
        }
    };
    Ok(finish.apply(part))
}

/// `run` of `call` as a future the caller drives on its own thread (`later::turn`), where
/// the store gives its part as one (`TokenStore::later`: a PostgreSQL store's calls, no
/// thread of libuv's pool in between) and the call is short work for the caller's thread
/// (not a batch of more than `AT_ONCE_TOKENS` tokens, whose rows are made ready on it, nor
/// cleanup or a backup); else the call back, for `run` on the pool. The same steps as
/// `run`: the arguments checked first (an error here, before anything runs), the store's
/// part, then `Finish`. A call given back is checked again by `run` (a few comparisons).
pub fn run_later(store: Arc<dyn TokenStore>, call: Call, now: i64) -> Result<Driven> {
    if !short(&call) {
        return Ok(Driven::Back(Box::new(call)));
    }
    check(&call)?;
    let finish = Finish::of(&call);
    Ok(match store.later(call, now) {
        Driven::Later(part) => {
            Driven::Later(Box::pin(async move { Ok(finish.apply(part.await?)) }))
        }
        back => back,
    })
}

/// The rules a call's arguments must keep beyond their types, checked before the store
/// sees the call.
fn check(call: &Call) -> Result<()> {
    match call {
        Call::StoreAccessTokens(tokens) => tokens.iter().try_for_each(validate_new_access_token),
        Call::StoreAuthorizationCode(code, data) => validate_authorization_code(code, data),
        Call::RotateRefreshToken(request) => [
            ("refreshToken", &request.refresh_token),
            ("newAccessToken", &request.new_access_token),
            ("newRefreshToken", &request.new_refresh_token),
        ]
        .into_iter()
        .try_for_each(|(name, value)| require_non_empty(name, value)),
        Call::PutClient(client) => require_non_empty("client_id", &client.client_id),
        Call::StorePendingAuthorization { state, .. } => require_non_empty("state", state),
        _ => Ok(()),
    }
}

/// What a call makes of its store's answer.
enum Finish {
    AsIs,
    /// `StoreAccessTokens`: how many distinct tokens it stored.
    Stored(usize),
    /// `ConsumeAuthorizationCode`: the code taken is given only if this verifier passes.
    Pkce(Option<String>),
}

impl Finish {
    fn of(call: &Call) -> Finish {
        match call {
            Call::StoreAccessTokens(tokens) => Finish::Stored(distinct(tokens)),
            Call::ConsumeAuthorizationCode { verifier, .. } => Finish::Pkce(verifier.clone()),
            _ => Finish::AsIs,
        }
    }

    fn apply(self, part: Answer) -> Answer {
        match (self, part) {
            (Finish::Stored(n), _) => Answer::Count(n),
            (Finish::Pkce(verifier), Answer::AuthorizationCode(taken)) => {
                Answer::AuthorizationCode(
                    taken.and_then(|data| pkce_passed(data, verifier.as_deref())),
                )
            }
            (_, part) => part,
        }
    }
}

/// How many distinct tokens `tokens` holds (a token given twice is stored once).
fn distinct(tokens: &[NewAccessToken]) -> usize {
    if tokens.len() <= 1 {
        return tokens.len();
    }
    tokens
        .iter()
        .map(|t| t.token.as_str())
        .collect::<HashSet<_>>()
        .len()
}

/// The code taken, if `verifier` passes its PKCE challenge.
fn pkce_passed(data: AuthorizationCode, verifier: Option<&str>) -> Option<AuthorizationCode> {
    let ok = pkce::verify(
        data.code_challenge.as_deref(),
        data.code_challenge_method.as_deref(),
        verifier,
    );
    ok.then_some(data)
}

/// Stores access tokens, all or none; returns how many distinct tokens the call left stored
/// (a token given twice is stored once, the last one winning).
pub fn store_access_tokens(
    store: &dyn TokenStore,
    tokens: &[NewAccessToken],
    now: i64,
) -> Result<usize> {
    tokens.iter().try_for_each(validate_new_access_token)?;
    store.store_access_tokens(tokens, now)?;
    Ok(distinct(tokens))
}

pub fn store_authorization_code(
    store: &dyn TokenStore,
    code: &str,
    data: &AuthorizationCode,
) -> Result<()> {
    validate_authorization_code(code, data)?;
    store.store_authorization_code(code, data)
}

/// `consumeAuthorizationCode`: takes the code (so any attempt uses it up), then checks PKCE.
pub fn consume_authorization_code(
    store: &dyn TokenStore,
    code: &str,
    verifier: Option<&str>,
    now: i64,
) -> Result<Option<AuthorizationCode>> {
    Ok(store
        .take_authorization_code(code, now)?
        .and_then(|data| pkce_passed(data, verifier)))
}

/// Removes everything expired, in transactions of `batch` rows; returns how many.
pub fn cleanup_all(store: &dyn TokenStore, now: i64, batch: usize) -> Result<usize> {
    let batch = batch.max(1);
    let mut total = 0;
    loop {
        let n = store.cleanup_expired(now, batch)?;
        total += n;
        if n < batch {
            return Ok(total);
        }
    }
}

const MIN_CHUNK: usize = 16;
const MAX_CHUNK: usize = 4096;

/// Cleanup off the JavaScript thread, cut into transactions sized to last about the
/// store's `cleanup_slice`, so that a writer on another thread (or process) never waits
/// long for the lock; the size adapts to the machine.
pub struct BackgroundCleanup {
    chunk: AtomicUsize,
    /// Who this store's automatic cleanup is, to the other processes (a random number).
    holder: i64,
}

impl Default for BackgroundCleanup {
    fn default() -> Self {
        use std::hash::BuildHasher;
        // RandomState is seeded from the OS's random source: distinct across processes
        // (even of the same pid in two containers sharing a file) and stores.
        let random = std::collections::hash_map::RandomState::new();
        BackgroundCleanup {
            chunk: AtomicUsize::new(256),
            holder: random.hash_one(std::process::id()) as i64,
        }
    }
}

impl BackgroundCleanup {
    /// One batch: at most `limit` rows; returns how many it removed (fewer than `limit`
    /// means nothing expired is left, or, for the `automatic` cleanup, that another
    /// process's is at work). After each transaction that leaves more to do, it pauses
    /// as the store asks (`TokenStore::cleanup_pause`), so that writers get the lock.
    pub fn batch(
        &self,
        store: &dyn TokenStore,
        now: i64,
        limit: usize,
        automatic: bool,
    ) -> Result<usize> {
        let mut removed = 0;
        while removed < limit {
            let chunk = self
                .chunk
                .load(Ordering::Relaxed)
                .clamp(MIN_CHUNK, MAX_CHUNK);
            let want = chunk.min(limit - removed);
            let started = Instant::now();
            let n = if automatic {
                match store.cleanup_expired_as(now, want, self.holder)? {
                    Some(n) => n,
                    None => break,
                }
            } else {
                store.cleanup_expired_in_background(now, want)?
            };
            let took = started.elapsed();
            let target = store.cleanup_slice();
            if took > target && chunk > MIN_CHUNK {
                self.chunk.store(chunk / 2, Ordering::Relaxed);
            } else if took < target / 3 && n == want && chunk < MAX_CHUNK {
                self.chunk.store(chunk * 2, Ordering::Relaxed);
            }
            removed += n;
            if n < want {
                break;
            }
            std::thread::sleep(store.cleanup_pause(took));
        }
        Ok(removed)
    }
}

pub fn validate_new_access_token(t: &NewAccessToken) -> Result<()> {
    require_non_empty("accessToken", &t.token)?;
    require_non_empty("apiKey", &t.api_key)?;
    require_non_empty("clientId", &t.client_id)?;
    if t.user_id.as_deref() == Some("") {
        return Err(invalid("userId must be null or a non-empty string"));
    }
    Ok(())
}

pub fn validate_authorization_code(code: &str, c: &AuthorizationCode) -> Result<()> {
    require_non_empty("code", code)?;
    require_non_empty("apiKey", &c.api_key)?;
    require_non_empty("clientId", &c.client_id)?;
    require_non_empty("redirectUri", &c.redirect_uri)?;
    if c.user_id.as_deref() == Some("") {
        return Err(invalid("userId must be null or a non-empty string"));
    }
    Ok(())
}

fn require_non_empty(name: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(&format!("{name} must be a non-empty string")));
    }
    Ok(())
}

fn invalid(msg: &str) -> StoreError {
    StoreError::InvalidArgument(msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    /// A valid token with no refresh token and no user.
    fn plain_token() -> NewAccessToken {
        NewAccessToken {
            resource: None,
            extra: None,
            links: None,
            token: "a".into(),
            refresh_token: None,
            api_key: "k".into(),
            user_id: None,
            client_id: "c".into(),
            scopes: vec![],
            expires_at: None,
        }
    }

    #[test]
    fn invalid_arguments_store_nothing() {
        let s = MemoryStore::new();
        let ok = plain_token();
        let mut empty = ok.clone();
        empty.token.clear();
        let err = store_access_tokens(&s, &[ok.clone(), empty], 0).unwrap_err();
        assert_eq!(err.code(), "ERR_TOKEN_STORAGE_INVALID_ARGUMENT");
        let mut no_user = ok.clone();
        no_user.user_id = Some(String::new());
        assert!(store_access_tokens(&s, &[no_user], 0).is_err());
        let code = AuthorizationCode {
            resource: None,
            extra: None,
            user_id: None,
            api_key: "k".into(),
            client_id: "c".into(),
            redirect_uri: String::new(),
            code_challenge: None,
            code_challenge_method: None,
            scopes: vec![],
            expires_at: 1,
            created_at: 0,
        };
        assert!(store_authorization_code(&s, "c", &code).is_err());
        assert_eq!(s.stats(0).unwrap().total_tokens, 0);
        assert!(s.take_authorization_code("c", 0).unwrap().is_none());
        assert_eq!(store_access_tokens(&s, &[ok.clone(), ok], 0).unwrap(), 1);
    }

    /// The automatic cleanup's last batch prepares getStats (issue 18): on a SQLite store
    /// it refines the bucket ahead that holds many tokens, with `stats_ahead_ms`; not without.
    #[test]
    fn the_last_automatic_batch_prepares_stats_ahead() {
        use crate::store::{SqliteStore, SyncMode};
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_millis() as i64;
        let start = ((clock >> 12) + 3) << 12;
        for (ahead, refined) in [(0, 0), (60_000, 1)] {
            let dir = tempfile::tempdir().expect("a temp folder");
            let path = dir.path().join("t.db");
            let store = SqliteStore::new(path.clone(), SyncMode::Normal, 1000);
            let tokens: Vec<_> = (0..5000)
                .map(|i| NewAccessToken {
                    links: None,
                    token: format!("t{i}"),
                    expires_at: Some(start + i % 4000),
                    ..plain_token()
                })
                .collect();
            store.store_access_tokens(&tokens, clock).expect("stored");
            let batch = Call::CleanupBatch {
                limit: 500,
                automatic: true,
                stats_ahead_ms: ahead,
            };
            run(&store, &BackgroundCleanup::default(), batch, clock).expect("a batch");
            let marked: i64 = rusqlite::Connection::open(&path)
                .and_then(|c| {
                    c.query_row(
                        "SELECT COUNT(*) FROM nts_refined WHERE bucket = ?1",
                        [start >> 12],
                        |r| r.get(0),
                    )
                })
                .expect("a count");
            assert_eq!(marked, refined, "stats_ahead_ms {ahead}");
        }
    }

    /// `run_later` checks the arguments first, whatever the store; a store that gives no
    /// future (any but PostgreSQL) gets the call back, for the pool.
    #[test]
    fn run_later_checks_first_and_gives_back_what_it_cannot_run() {
        let memory: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let mut empty = plain_token();
        empty.api_key.clear();
        let refused = run_later(memory.clone(), Call::StoreAccessTokens(vec![empty]), 0);
        assert!(matches!(refused, Err(e) if e.code() == "ERR_TOKEN_STORAGE_INVALID_ARGUMENT"));
        let back = run_later(
            memory.clone(),
            Call::StoreAccessTokens(vec![plain_token()]),
            0,
        );
        assert!(
            matches!(back, Ok(Driven::Back(c)) if matches!(*c, Call::StoreAccessTokens(ref t) if t.len() == 1))
        );
        assert_eq!(memory.stats(0).expect("stats").total_tokens, 0);
    }

    /// The Promise API runs a memory store's short calls on the calling thread; its long
    /// ones (a big batch, cleanup, a backup) and every other store's calls go off it.
    #[test]
    fn at_once_takes_short_memory_calls_only() {
        use crate::store::{SqliteStore, SyncMode};
        let memory = MemoryStore::new();
        let tokens = |n: usize| Call::StoreAccessTokens(vec![plain_token(); n]);
        assert!(at_once(
            &memory,
            &Call::GetAccessToken {
                token: "t".into(),
                hold: false
            }
        ));
        assert!(at_once(&memory, &tokens(1)));
        assert!(at_once(&memory, &tokens(AT_ONCE_TOKENS)));
        assert!(!at_once(&memory, &tokens(AT_ONCE_TOKENS + 1)));
        assert!(!at_once(&memory, &Call::CleanupAll(10)));
        let batch = Call::CleanupBatch {
            limit: 10,
            automatic: true,
            stats_ahead_ms: 60_000,
        };
        assert!(!at_once(&memory, &batch));
        let dir = tempfile::tempdir().expect("a temp folder");
        let file = SqliteStore::new(dir.path().join("t.db"), SyncMode::Normal, 1000);
        assert!(!at_once(
            &file,
            &Call::GetAccessToken {
                token: "t".into(),
                hold: false
            }
        ));
    }
}
