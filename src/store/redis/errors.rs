//! The socket's and the server's errors mapped to the store's backend-neutral kinds
//! (`StoreError`). Of an error reply only its first word (`WRONGTYPE`, `OOM`, …) is shown:
//! the rest may quote a value.

use std::io;

use super::RedisStore;
use crate::error::StoreError;

impl RedisStore {
    /// A failure of the socket: the server cannot be reached, closed the connection, or
    /// did not answer within the timeout.
    pub(super) fn io_error(&self, e: &io::Error) -> StoreError {
        let location = self.shown();
        let reason = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
                "no answer within the timeout (connect {} ms, query {} ms)",
                self.settings.connect_timeout.as_millis(),
                self.settings.query_timeout.as_millis()
            ),
            io::ErrorKind::ConnectionRefused => "the server refused the connection".into(),
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => "the server closed the connection".into(),
            _ => e.to_string(),
        };
        // A certificate that is refused does not go away by retrying.
        if reason.contains("invalid peer certificate") {
            return StoreError::Open {
                path: location,
                reason,
            };
        }
        StoreError::Unavailable { location, reason }
    }

    /// An error reply: `text` is the server's whole message, of which only the first word
    /// is shown.
    pub(super) fn server_error(&self, text: &str) -> StoreError {
        let location = self.shown();
        let word = first_word(text);
        match word.as_str() {
            "NOAUTH" | "WRONGPASS" => StoreError::Open {
                path: location,
                reason: format!(
                    "the server refused the login ({word}); check the user and password of {}",
                    self.settings.url_name
                ),
            },
            w if not_now(w) => StoreError::Unavailable {
                location,
                reason: format!("the server cannot answer now ({word})"),
            },
            // A primary demoted to a replica (a failover behind one host name): `call` drops
            // the connections, and the next call reaches the new primary.
            "READONLY" => StoreError::Unavailable {
                location,
                reason: "the server is a replica now (READONLY: a failover); the next call \
                         connects again"
                    .into(),
            },
            "OOM" => StoreError::Full { path: location },
            // The scripts' refusal of a row in clear by a sealed store (`scripts`).
            "NTSCLEAR" => crate::store::sealed::clear_row_refused(),
            "MOVED" | "ASK" | "CLUSTERDOWN" | "CROSSSLOT" => StoreError::Config(format!(
                "{}: the server is a Redis Cluster ({word}), which is not supported; give the URL \
                 of a single server or primary",
                self.settings.url_name
            )),
            "NOPERM" => StoreError::Redis {
                location,
                reason: "the user may not run a command or script this store needs (NOPERM)"
                    .into(),
            },
            "ERR" if text.starts_with("ERR unknown command") => StoreError::Redis {
                location,
                reason: "the server lacks a command this store needs (Redis 7.0 or later, or \
                         Valkey, is required)"
                    .into(),
            },
            _ => StoreError::Redis {
                location,
                reason: format!("Redis answered an error ({word})"),
            },
        }
    }
}

/// Whether an error reply's first word is of a server that cannot answer now (loading its
/// data, running a long script, a replica without its primary), not a refusal.
pub(super) fn not_now(word: &str) -> bool {
    matches!(word, "LOADING" | "MASTERDOWN" | "BUSY" | "TRYAGAIN")
}

/// The first word of an error reply (`ERR`, `NOPERM`, …): all of it that is ever shown, as
/// the rest may quote a value.
pub(super) fn first_word(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or("ERR")
        .chars()
        .take(32)
        .collect()
}
