//! Tests of the SQLite store's fixes for issue 15's defects (files written by other
//! programs, the client order of an older schema).

use std::path::Path;

use rusqlite::Connection;

use super::connection::Db;
use super::schema::{APPLICATION_ID, MIGRATIONS};
use super::SyncMode;
use crate::error::Result;
use crate::model::ClientRecord;

const NOW: i64 = 1_800_000_000_000;

fn open(path: &Path) -> Result<Db> {
    Db::open(path, SyncMode::Normal, 1000)
}

fn client(id: &str, created_at: i64) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        secret_digest: None,
        metadata: "{}".into(),
        created_at,
    }
}

#[test]
fn clients_of_a_schema_4_file_keep_their_listed_order_and_new_ones_follow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    {
        let c = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..4] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 4).unwrap();
        c.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        for (id, at) in [("b", NOW), ("a", NOW), ("c", NOW - 1)] {
            c.execute(
                "INSERT INTO nts_clients (client_id, secret_digest, metadata, created_at)
                 VALUES (?1, NULL, '{}', ?2)",
                rusqlite::params![id, at],
            )
            .unwrap();
        }
    }
    let s = open(&path).unwrap();
    assert_eq!(s.client_ids().unwrap(), ["c", "a", "b"]);
    s.put_client(&client("0", NOW)).unwrap();
    s.put_client(&client("a", NOW + 5)).unwrap();
    assert_eq!(s.client_ids().unwrap(), ["c", "a", "b", "0"]);
}
