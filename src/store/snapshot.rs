//! Every record of a store as plain rows, and what is made of them: `copy` from any store
//! to any store, and `backup` into a new SQLite file.
//!
//! A store reads its rows in one consistent snapshot (`RowStore::export_rows`: the memory
//! store under its lock, SQLite in one read transaction, PostgreSQL in one REPEATABLE READ
//! transaction; Redis in pages instead, one script each, see `redis::snapshot`) while other
//! callers keep writing, and writes rows as they are
//! (`import_rows`: creation times, rotation families and rotated-away tokens kept), so
//! that a copy logs nobody out. The rows pass through `copy` one batch at a time. Rows of a
//! sealed store (issue 19, encryption at rest: `sealed`) travel as they are, digests and
//! sealed values, with the store's mark, read in the same snapshot (`Sink::counts`), which
//! the copy gives the target (`Import::set_seal_mark`): never sealed rows under a clear
//! mark, nor the reverse.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::TokenStore;
use crate::error::{Result, StoreError};
use crate::model::{AccessToken, AuthorizationCode, ClientRecord, NewAccessToken, RefreshToken};

/// An access token as stored: its string, and the record (with its refresh token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token: String,
    pub access: AccessToken,
}

impl TokenRow {
    /// The row as `storeAccessToken` takes it (its links as they are).
    pub fn to_new(&self) -> NewAccessToken {
        let a = &self.access;
        NewAccessToken {
            token: self.token.clone(),
            refresh_token: a.refresh_token.clone(),
            api_key: a.api_key.clone(),
            user_id: a.user_id.clone(),
            client_id: a.client_id.clone(),
            scopes: a.scopes.clone(),
            expires_at: a.expires_at,
            resource: a.resource.clone(),
            extra: a.extra.clone(),
            links: a.links.clone(),
        }
    }
}

/// A refresh token as stored: its string, and the record (with its access token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRow {
    pub refresh_token: String,
    pub refresh: RefreshToken,
}

/// A pending authorization: its state, its data (JSON text) and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    pub state: String,
    pub data: String,
    pub expires_at: i64,
}

/// A refresh token rotated away: its family and when (a replay revokes the family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredRow {
    pub refresh_token: String,
    pub family: String,
    pub retired_at: i64,
}

/// One batch of rows of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    AccessTokens(Vec<TokenRow>),
    RefreshTokens(Vec<RefreshRow>),
    AuthorizationCodes(Vec<(String, AuthorizationCode)>),
    /// In registration order: a target numbers them in the order it receives them.
    Clients(Vec<ClientRecord>),
    PendingAuthorizations(Vec<PendingRow>),
    /// (refresh token, family) of the refresh tokens a rotation issued.
    RefreshFamilies(Vec<(String, String)>),
    RetiredRefreshTokens(Vec<RetiredRow>),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::AccessTokens(r) => r.len(),
            Rows::RefreshTokens(r) => r.len(),
            Rows::AuthorizationCodes(r) => r.len(),
            Rows::Clients(r) => r.len(),
            Rows::PendingAuthorizations(r) => r.len(),
            Rows::RefreshFamilies(r) => r.len(),
            Rows::RetiredRefreshTokens(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows in batches of at most `n`, in order (copies).
    pub fn chunks(&self, n: usize) -> Vec<Rows> {
        fn split<T: Clone>(r: &[T], n: usize, wrap: fn(Vec<T>) -> Rows) -> Vec<Rows> {
            r.chunks(n.max(1)).map(|c| wrap(c.to_vec())).collect()
        }
        match self {
            Rows::AccessTokens(r) => split(r, n, Rows::AccessTokens),
            Rows::RefreshTokens(r) => split(r, n, Rows::RefreshTokens),
            Rows::AuthorizationCodes(r) => split(r, n, Rows::AuthorizationCodes),
            Rows::Clients(r) => split(r, n, Rows::Clients),
            Rows::PendingAuthorizations(r) => split(r, n, Rows::PendingAuthorizations),
            Rows::RefreshFamilies(r) => split(r, n, Rows::RefreshFamilies),
            Rows::RetiredRefreshTokens(r) => split(r, n, Rows::RetiredRefreshTokens),
        }
    }
}

/// How many rows of each kind a store holds, expired ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub authorization_codes: u64,
    pub clients: u64,
    pub pending_authorizations: u64,
    pub refresh_families: u64,
    pub retired_refresh_tokens: u64,
}

/// The tables a store's rows are in (the same names in SQLite and PostgreSQL), in the
/// order of `Counts`' fields.
pub const TABLES: [&str; 7] = [
    "access_tokens",
    "refresh_tokens",
    "authorization_codes",
    "nts_clients",
    "nts_pending_authorizations",
    "nts_refresh_families",
    "nts_retired_refresh_tokens",
];

/// One statement answering one row: the count of each of `TABLES` (each name after `prefix`,
/// a schema and its dot, or nothing), read by `Counts::from_row`.
pub fn counts_sql(prefix: &str) -> String {
    let each: Vec<String> = TABLES
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {prefix}{t})"))
        .collect();
    format!("SELECT {}", each.join(", "))
}

impl Counts {
    /// The counts of `counts_sql`, read by `get(i)` (negative ones as 0).
    pub fn from_row<E>(
        get: impl Fn(usize) -> std::result::Result<i64, E>,
    ) -> std::result::Result<Self, E> {
        let n = |i| get(i).map(|n| n.max(0) as u64);
        Ok(Counts {
            access_tokens: n(0)?,
            refresh_tokens: n(1)?,
            authorization_codes: n(2)?,
            clients: n(3)?,
            pending_authorizations: n(4)?,
            refresh_families: n(5)?,
            retired_refresh_tokens: n(6)?,
        })
    }

    pub fn total(&self) -> u64 {
        self.access_tokens
            + self.refresh_tokens
            + self.authorization_codes
            + self.clients
            + self.pending_authorizations
            + self.refresh_families
            + self.retired_refresh_tokens
    }

    /// The counts as JSON, each kind named as in JavaScript.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "accessTokens": self.access_tokens,
            "refreshTokens": self.refresh_tokens,
            "authorizationCodes": self.authorization_codes,
            "clients": self.clients,
            "pendingAuthorizations": self.pending_authorizations,
            "refreshFamilies": self.refresh_families,
            "retiredRefreshTokens": self.retired_refresh_tokens,
        })
    }

    /// The first kind whose counts differ, named as in JSON.
    fn first_difference(&self, other: &Counts) -> Option<(&'static str, u64, u64)> {
        [
            ("accessTokens", self.access_tokens, other.access_tokens),
            ("refreshTokens", self.refresh_tokens, other.refresh_tokens),
            (
                "authorizationCodes",
                self.authorization_codes,
                other.authorization_codes,
            ),
            ("clients", self.clients, other.clients),
            (
                "pendingAuthorizations",
                self.pending_authorizations,
                other.pending_authorizations,
            ),
            (
                "refreshFamilies",
                self.refresh_families,
                other.refresh_families,
            ),
            (
                "retiredRefreshTokens",
                self.retired_refresh_tokens,
                other.retired_refresh_tokens,
            ),
        ]
        .into_iter()
        .find(|(_, a, b)| a != b)
    }
}

/// Where an export hands its snapshot: first its counts and the store's mark of encryption
/// at rest (`TokenStore::seal_mark`, `None` in clear), then its rows in batches. A paged
/// export (Redis) gives, as counts, what its indexes hold as it starts (for the progress
/// only); `RowStore::export_rows` returns those of the rows it handed over.
pub trait Sink {
    fn counts(&mut self, counts: &Counts, mark: Option<&str>) -> Result<()>;
    fn rows(&mut self, rows: Rows) -> Result<()>;
}

/// A store's side of a copy (`RowStore::import_all`): one transaction, open until
/// `import_all` returns.
pub trait Import {
    /// How many rows of each kind the store holds, as this transaction sees them.
    fn counts(&mut self) -> Result<Counts>;
    /// Removes every row.
    fn clear(&mut self) -> Result<()>;
    /// Writes rows as they are: a row replaces one with the same key.
    fn rows(&mut self, rows: &Rows) -> Result<()>;
    /// Called first by a conversion (`sealed::convert`), before it reads anything: takes
    /// what the store needs so that nobody else writes until the commit (SQLite's
    /// `BEGIN IMMEDIATE` has it already; PostgreSQL locks its tables). `removes_mark`: the
    /// conversion ends with the store in clear (`decrypt`).
    fn lock_for_conversion(&mut self, _removes_mark: bool) -> Result<()> {
        Ok(())
    }
    /// Reads every row as this transaction sees it (`RowStore::export_rows`), for a
    /// conversion that rewrites them in the same transaction (`sealed::convert`).
    fn export(&mut self, _batch: usize, _sink: &mut dyn Sink) -> Result<()> {
        Err(not_convertible())
    }
    /// The mark of encryption at rest (`TokenStore::seal_mark`) as this transaction sees it.
    fn seal_mark(&mut self) -> Result<Option<String>> {
        Err(not_convertible())
    }
    /// Sets the mark (with what a sealed store keeps beside it: the links trigger of SQLite
    /// and PostgreSQL), or removes it and the links (`None`: the store is in clear). A copy
    /// sets the source's.
    fn set_seal_mark(&mut self, _mark: Option<&str>) -> Result<()> {
        Err(not_convertible())
    }
}

/// `encrypt` and `decrypt` on a store whose transactions cannot read and rewrite its rows
/// in one (the memory store, which goes with its process).
fn not_convertible() -> StoreError {
    StoreError::Config(
        "encrypt and decrypt are available for SQLite files and PostgreSQL schemas only".into(),
    )
}

/// `import_all` for a store without a transaction spanning calls (the memory store, which
/// goes with its process: nothing of it outlives a kill), one call of its own at a time.
/// `set_mark` sets the store's mark (`Import::set_seal_mark`).
pub fn import_directly(
    store: &dyn RowStore,
    set_mark: &dyn Fn(Option<&str>) -> Result<()>,
    fill: &mut dyn FnMut(&mut dyn Import) -> Result<Counts>,
) -> Result<Counts> {
    struct Direct<'a>(&'a dyn RowStore, &'a dyn Fn(Option<&str>) -> Result<()>);
    impl Import for Direct<'_> {
        fn counts(&mut self) -> Result<Counts> {
            self.0.row_counts()
        }
        fn clear(&mut self) -> Result<()> {
            self.0.clear_rows()
        }
        fn rows(&mut self, rows: &Rows) -> Result<()> {
            self.0.import_rows(rows)
        }
        fn set_seal_mark(&mut self, mark: Option<&str>) -> Result<()> {
            (self.1)(mark)
        }
    }
    fill(&mut Direct(store, set_mark))
}

/// What every store does with its rows as they are (see the module's comment).
pub trait RowStore {
    /// How many rows of each kind the store holds now.
    fn row_counts(&self) -> Result<Counts>;

    /// Reads every row in one consistent snapshot, taken while others keep writing (Redis:
    /// in pages, see `redis::snapshot`): gives `sink` the snapshot's counts and mark, then
    /// its rows in batches of at most `batch` (clients in registration order), and returns
    /// the counts of the rows handed over.
    fn export_rows(&self, batch: usize, sink: &mut dyn Sink) -> Result<Counts>;

    /// Writes rows as they are, in one transaction: a row replaces one with the same key.
    fn import_rows(&self, rows: &Rows) -> Result<()>;

    /// Runs `fill` in one transaction of the store's own, committed if it returns `Ok` and
    /// rolled back otherwise: a copy is all or nothing. A process killed mid-way leaves
    /// nothing of it either (SQLite ignores the uncommitted pages of its WAL when the file
    /// is next opened; PostgreSQL rolls back the transaction of a connection that is gone).
    fn import_all(&self, fill: &mut dyn FnMut(&mut dyn Import) -> Result<Counts>)
        -> Result<Counts>;

    /// Writes the whole snapshot into the empty file at `path` in one step of the store's
    /// own, if it has one (SQLite: `VACUUM INTO`, pages copied rather than rows inserted);
    /// returns the counts it holds. `None`: `backup` copies the rows.
    fn snapshot_into(&self, _path: &Path) -> Option<Result<Counts>> {
        None
    }

    /// Removes every row (a copy's target, when told to overwrite it).
    fn clear_rows(&self) -> Result<()>;

    /// Whether a store of this package is already there, asked without creating one (as a
    /// store's first call would): the command line's read-only and maintenance commands
    /// refuse a mistyped PostgreSQL schema instead of creating it empty. The memory and
    /// SQLite stores answer yes (the command line checks that a file exists itself).
    fn exists(&self) -> Result<bool> {
        Ok(true)
    }

    /// What names the store whatever the URL that reached it: the same for two stores only
    /// if they are one (the server's own identity, its database, the schema or key prefix),
    /// so that a copy refuses to empty its own source reached by another name (`localhost`
    /// and `127.0.0.1`, a socket and TCP). `None`: not known (a SQLite file, which the
    /// command line compares by its real path; a Redis user not allowed `INFO`).
    fn identity(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Removes every access token (with its refresh token) and authorization code issued
    /// to the client, as one transaction (the operator's `revoke --client`); returns how
    /// many access tokens it removed.
    fn revoke_client(&self, client_id: &str) -> Result<u64>;
}

/// `rows` cut into batches of at most `batch`.
pub fn batches(rows: Rows, batch: usize) -> Vec<Rows> {
    fn cut<T>(v: Vec<T>, batch: usize, wrap: fn(Vec<T>) -> Rows) -> Vec<Rows> {
        let mut out = Vec::new();
        let mut it = v.into_iter().peekable();
        while it.peek().is_some() {
            out.push(wrap(it.by_ref().take(batch).collect()));
        }
        out
    }
    match rows {
        Rows::AccessTokens(v) => cut(v, batch, Rows::AccessTokens),
        Rows::RefreshTokens(v) => cut(v, batch, Rows::RefreshTokens),
        Rows::AuthorizationCodes(v) => cut(v, batch, Rows::AuthorizationCodes),
        Rows::Clients(v) => cut(v, batch, Rows::Clients),
        Rows::PendingAuthorizations(v) => cut(v, batch, Rows::PendingAuthorizations),
        Rows::RefreshFamilies(v) => cut(v, batch, Rows::RefreshFamilies),
        Rows::RetiredRefreshTokens(v) => cut(v, batch, Rows::RetiredRefreshTokens),
    }
}

/// Gives `sink` an export's counts, then its rows in batches of at most `batch`; returns
/// the counts (`RowStore::export_rows` of a store that read its snapshot at once).
pub fn hand_over(
    counts: Counts,
    mark: Option<&str>,
    rows: Vec<Rows>,
    batch: usize,
    sink: &mut dyn Sink,
) -> Result<Counts> {
    sink.counts(&counts, mark)?;
    for r in rows {
        for b in batches(r, batch.max(1)) {
            sink.rows(b)?;
        }
    }
    Ok(counts)
}

/// Rows per batch unless told otherwise.
pub const DEFAULT_BATCH: usize = 1000;

/// How far a copy is: rows done of the total (0 until the snapshot's counts are known).
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

impl Progress {
    /// Back to nothing done of nothing, for the next backup or copy.
    pub fn reset(&self) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
    }

    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// A copy's settings.
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    /// Rows per batch (one transaction of the target each).
    pub batch: usize,
    /// Empty a target that holds rows first, instead of refusing it.
    pub overwrite: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            batch: DEFAULT_BATCH,
            overwrite: false,
        }
    }
}

/// Copies every row of `from` into `to` (one snapshot of `from`, see `RowStore`), its mark
/// of encryption at rest with them, then checks that `to` holds as many rows of each kind
/// as the snapshot had. A target that
/// holds rows is refused unless `overwrite`, which empties it first. All of it is one
/// transaction of the target (`RowStore::import_all`): a copy that fails, or whose process
/// is killed, leaves the target as it was (empty, or with the rows `overwrite` was to
/// replace), so running it again is how an interrupted copy is resumed. Returns the counts.
pub fn copy(
    from: &dyn TokenStore,
    to: &dyn TokenStore,
    options: CopyOptions,
    progress: &Progress,
) -> Result<Counts> {
    struct Into<'a> {
        to: &'a mut dyn Import,
        progress: &'a Progress,
    }
    impl Sink for Into<'_> {
        fn counts(&mut self, counts: &Counts, mark: Option<&str>) -> Result<()> {
            self.progress.total.store(counts.total(), Ordering::Relaxed);
            // The target's mark becomes the source's (it is empty, or emptied): its rows
            // come as they are.
            self.to.set_seal_mark(mark)
        }
        fn rows(&mut self, rows: Rows) -> Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            self.to.rows(&rows)?;
            self.progress
                .done
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            Ok(())
        }
    }
    // The target's transaction is held while the source is read: one store on both sides
    // would wait for itself (and a copy into itself could only empty it).
    if std::ptr::addr_eq(from, to) {
        return Err(StoreError::InvalidArgument(
            "a store cannot be copied into itself".into(),
        ));
    }
    to.import_all(&mut |target| {
        let before = target.counts()?;
        if before.total() > 0 {
            if !options.overwrite {
                return Err(not_empty(&before));
            }
            target.clear()?;
        }
        let counts = from.export_rows(
            options.batch.max(1),
            &mut Into {
                to: target,
                progress,
            },
        )?;
        // The snapshot's counts given first may be an estimate (a paged export's: Redis);
        // what was handed over is the whole, so a finished copy shows all of it done.
        progress.total.store(counts.total(), Ordering::Relaxed);
        let after = target.counts()?;
        if let Some((kind, want, got)) = counts.first_difference(&after) {
            return Err(StoreError::InvalidArgument(format!(
                "the copy is incomplete: the source's snapshot had {want} {kind}, the target \
                 holds {got} (was it written to during the copy?)"
            )));
        }
        Ok(counts)
    })
}

fn not_empty(counts: &Counts) -> StoreError {
    StoreError::InvalidArgument(format!(
        "the target store is not empty ({} access tokens, {} rows in all); \
         pass overwrite (--force) to replace what it holds",
        counts.access_tokens,
        counts.total()
    ))
}

impl BackupReport {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path,
            "counts": self.counts.to_json(),
            "bytes": self.bytes,
            "ms": self.ms,
        })
    }
}

/// A backup's settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackupOptions {
    /// Replace a file already at the destination (else refused).
    pub overwrite: bool,
    /// Rows per batch (0: the default).
    pub batch: usize,
}

/// What a backup wrote: its rows, and how long it took.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub path: String,
    pub counts: Counts,
    pub bytes: u64,
    pub ms: u64,
}

/// Writes a consistent snapshot of `from` as a new SQLite file at `destination`, in this
/// package's schema (a SQLite store opens it). The file is made beside the destination
/// under a temporary name, created 0600, filled (`RowStore::snapshot_into`, else the rows
/// copied), closed (its -wal folded in),
/// checked (`PRAGMA integrity_check` and every table's count against the snapshot's), and
/// only then renamed into place: a failed or interrupted backup leaves no file at the
/// destination. A file already there is refused unless `overwrite`.
pub fn backup(
    from: &dyn TokenStore,
    destination: &Path,
    options: BackupOptions,
    progress: &Progress,
) -> Result<BackupReport> {
    let started = std::time::Instant::now();
    let shown = destination.display().to_string();
    let open_err = |reason: String| StoreError::Open {
        path: shown.clone(),
        reason,
    };
    if destination.is_dir() {
        return Err(open_err("the path is a directory".into()));
    }
    if destination.exists() && !options.overwrite {
        return Err(open_err(
            "a file is already there; pass overwrite (--force) to replace it".into(),
        ));
    }
    if let Some(source) = from.location() {
        let same = std::fs::canonicalize(&source).ok();
        if same.is_some() && same == std::fs::canonicalize(destination).ok() {
            return Err(open_err("it is the store's own file".into()));
        }
    }
    let partial = partial_path(destination);
    let written = (|| {
        create_private(&partial).map_err(|e| open_err(format!("cannot create it ({e})")))?;
        let counts = match from.snapshot_into(&partial) {
            Some(counts) => {
                let counts = counts?;
                progress.total.store(counts.total(), Ordering::Relaxed);
                progress.done.store(counts.total(), Ordering::Relaxed);
                counts
            }
            None => {
                let target = crate::store::SqliteStore::new(
                    partial.clone(),
                    crate::store::SyncMode::Normal,
                    5000,
                );
                let options = CopyOptions {
                    batch: match options.batch {
                        0 => DEFAULT_BATCH,
                        n => n,
                    },
                    overwrite: false,
                };
                let counts = copy(from, &target, options, progress)?;
                target.close()?;
                counts
            }
        };
        super::sqlite::verify_backup(&partial, &counts)?;
        std::fs::rename(&partial, destination).map_err(|e| {
            open_err(format!(
                "cannot rename the finished backup into place ({e})"
            ))
        })?;
        Ok(counts)
    })();
    let counts = match written {
        Ok(c) => c,
        Err(e) => {
            for f in sidecars(&partial) {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
    };
    let bytes = std::fs::metadata(destination).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        path: shown,
        counts,
        bytes,
        ms: started.elapsed().as_millis() as u64,
    })
}

/// `destination` with `.partial-<pid>` appended, in the same folder (so the rename is atomic).
fn partial_path(destination: &Path) -> PathBuf {
    let mut name = destination.as_os_str().to_owned();
    name.push(format!(".partial-{}", std::process::id()));
    PathBuf::from(name)
}

/// The file and the -wal, -shm and -journal files SQLite may put beside it.
fn sidecars(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .collect()
}

/// Creates the file, never readable by others, not even for a moment; a stale one of the
/// same name (an earlier interrupted backup of this pid) is replaced.
fn create_private(path: &Path) -> std::io::Result<()> {
    for f in sidecars(path) {
        let _ = std::fs::remove_file(f);
    }
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.open(path).map(|_| ())
}
