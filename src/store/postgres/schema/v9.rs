//! Migration 9: facts about the store itself, by name: `seal` is the mark of encryption at
//! rest (issue 19, `store::sealed`), absent in a store written in clear.

pub const SQL: &str = "CREATE TABLE {s}.nts_meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );";
