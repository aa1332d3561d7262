//! The server's persistence, checked once per store when it first opens: a write is
//! acknowledged once Redis applied it in memory, and what a crash of the server keeps is
//! what `appendonly`, `appendfsync` and `save` wrote to disk. Only `appendonly yes` with
//! `appendfsync always` keeps every acknowledged write; anything else is a warning, and so
//! is a server that does not let us read them (`CONFIG` renamed or disabled, as on most
//! hosted Redis, or not allowed to our user). Never a failure: the server is the
//! operator's to configure.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::conn::Failure;
use super::RedisStore;
use crate::store::Warning;

/// The warning when the settings can lose acknowledged writes.
pub(super) const CAN_LOSE: &str =
    "the Redis server can lose acknowledged tokens in a crash; set appendonly yes and appendfsync always";
/// The warning when the settings cannot be read.
pub(super) const UNCHECKED: &str = "the Redis server's persistence settings could not be checked; make sure it runs with appendonly yes and appendfsync always";

impl RedisStore {
    /// Reads the settings once per store (again after a failure of the connection) and
    /// keeps the warning, if any, for `take_warnings`.
    pub(super) fn check_durability(&self) {
        if self.durability_checked.load(Ordering::Acquire) {
            return;
        }
        let answer = self.call(true, |c| {
            match c.command(&[b"CONFIG", b"GET", b"appendonly", b"appendfsync", b"save"]) {
                Ok(reply) => Ok(Ok(reply)),
                Err(Failure::Server(e)) => Ok(Err(e)),
                Err(e) => Err(e),
            }
        });
        let warning = match answer {
            // The connection failed: the next open checks again.
            Err(_) => return,
            // A server loading its data or busy with a script: the next open checks again.
            Ok(Err(text)) if super::errors::not_now(&super::errors::first_word(&text)) => return,
            Ok(Err(text)) => Some(unchecked(&self.shown(), &text)),
            Ok(Ok(reply)) => {
                let mut settings = HashMap::new();
                let mut items = reply.items().into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    if let (Some(k), Some(v)) = (k.text(), v.text()) {
                        settings.insert(k.to_ascii_lowercase(), v);
                    }
                }
                assess(&self.shown(), &settings)
            }
        };
        if self.durability_checked.swap(true, Ordering::AcqRel) {
            return;
        }
        if let (Some(w), Ok(mut kept)) = (warning, self.warnings.lock()) {
            kept.push(w);
        }
    }
}

/// The warning for a server that refused `CONFIG GET`: only the first word of its error
/// (`NOPERM`, `ERR`) is shown.
fn unchecked(server: &str, text: &str) -> Warning {
    let word = super::errors::first_word(text);
    Warning {
        message: UNCHECKED,
        fields: vec![
            ("server", server.to_owned()),
            ("reason", format!("CONFIG GET was refused ({word})")),
        ],
    }
}

/// The warning that `settings` (`appendonly`, `appendfsync`, `save` as `CONFIG GET` gave
/// them) call for, if any.
pub(super) fn assess(server: &str, settings: &HashMap<String, String>) -> Option<Warning> {
    let get = |name: &str| settings.get(name).map(|v| v.trim().to_ascii_lowercase());
    let (Some(aof), Some(fsync)) = (get("appendonly"), get("appendfsync")) else {
        return Some(Warning {
            message: UNCHECKED,
            fields: vec![
                ("server", server.to_owned()),
                ("reason", "CONFIG GET did not give appendonly and appendfsync".into()),
            ],
        });
    };
    let save = get("save").unwrap_or_default();
    let loses = match (aof.as_str(), fsync.as_str()) {
        ("yes", "always") => return None,
        ("yes", "everysec") => "up to about a second of acknowledged writes if the machine crashes",
        ("yes", _) => {
            "the acknowledged writes the operating system has not flushed yet (up to about 30 \
             seconds) if the machine crashes"
        }
        _ if save.is_empty() => "every acknowledged write (nothing is kept on disk)",
        _ => "every acknowledged write since the last snapshot (save)",
    };
    Some(Warning {
        message: CAN_LOSE,
        fields: vec![
            ("server", server.to_owned()),
            ("appendonly", aof),
            ("appendfsync", fsync),
            ("save", save),
            ("loses", loses.into()),
        ],
    })
}
