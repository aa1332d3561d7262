//! The schema in PostgreSQL: migrations, only ever appended, applied under an advisory
//! lock so that any number of instances starting at once apply each exactly once.
//!
//! `{s}` in the SQL stands for the quoted schema name. The tables and columns are the
//! SQLite store's (times in epoch milliseconds, `scopes` JSON text); a missing user id or
//! PKCE challenge is `NULL` here, as no older program reads these tables.

mod v1;
mod v2;
mod v3;
mod v4;
mod v5;
mod v6;
mod v7;
mod v8;
mod v9;
mod v10;
mod v11;
mod v12;
mod v13;
mod v14;
mod v15;

use tokio_postgres::Client;

/// Schema migrations, applied in order; `nts_migrations` records those applied.
/// Append only: a released entry is never edited.
pub const MIGRATIONS: &[&str] = &[
    v1::SQL, v2::SQL, v3::SQL, v4::SQL, v5::SQL, v6::SQL, v7::SQL, v8::SQL, v9::SQL, v10::SQL,
    v11::SQL, v12::SQL, v13::SQL, v14::SQL, v15::SQL,
];

/// `"name"`, quoted for SQL. The name was checked to be a plain identifier.
pub fn quote(schema: &str) -> String {
    format!("\"{}\"", schema.replace('"', "\"\""))
}

/// Brings the schema up to date: one read when it is (every start but the first), else
/// the migrations in one transaction under an advisory lock, the version read again
/// under the lock since another instance may have migrated meanwhile.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<(), MigrateError> {
    let s = quote(schema);
    let latest = MIGRATIONS.len() as i32;
    match applied(client, &s).await {
        Ok(Some(v)) if v == latest => return Ok(()),
        Ok(Some(v)) if v > latest => return Err(MigrateError::Newer(v, latest)),
        _ => {}
    }
    let tx = client.transaction().await?;
    tx.query_typed(
        "SELECT pg_advisory_xact_lock(hashtextextended('native-token-storage:' || $1, 0))",
        &[(&schema, tokio_postgres::types::Type::TEXT)],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.nts_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )"
    ))
    .await?;
    let from = applied(&tx, &s).await?.unwrap_or(0);
    if from > latest {
        return Err(MigrateError::Newer(from, latest));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.batch_execute(&sql.replace("{s}", &s)).await?;
        tx.batch_execute(&format!(
            "INSERT INTO {s}.nts_migrations (version) VALUES ({})",
            i + 1
        ))
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The latest migration applied, `None` before the first. Whether the table exists is
/// asked first: a query of a missing table would put an ERROR in the server's log.
async fn applied(
    client: &impl tokio_postgres::GenericClient,
    s: &str,
) -> Result<Option<i32>, tokio_postgres::Error> {
    let table = format!("{s}.nts_migrations");
    let exists = client
        .query_typed_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[(&table, tokio_postgres::types::Type::TEXT)],
        )
        .await?;
    if !exists.try_get::<_, bool>(0)? {
        return Ok(None);
    }
    let row = client
        .query_typed_one(&format!("SELECT max(version) FROM {table}"), &[])
        .await?;
    row.try_get(0)
}

pub enum MigrateError {
    /// The schema was migrated by a newer version of the package.
    Newer(i32, i32),
    Pg(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Pg(e)
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// A released migration is never edited (nor lost in a move between files): each
    /// text's SHA-256, as released. A new migration adds its line.
    #[test]
    fn migrations_are_never_edited() {
        let released = [
            "0b8b9d8e222be58b872176071c19e60e92060c871cce3d85d15c35cf25eda4a2",
            "1175bbd4abe5f7897bce15ec4d31ae34312070094fc74ed617e7b54ffa616120",
            "ed4ac2db20c1df337ce48051794661177d6820b148c437bd70a926da3e812ebc",
            "c91bc218dab7afbf9300e6e398802aa41a17002d73b5e73f689c6cd42e5dfa4e",
            "7133657972df8a553318101b5dc58eb7c72c567208b6ca0ffa0e1a78e0dd499c",
            "68bc4fb7e7a07bf840cade8688e414cc813ddc7721d15444c9234782209930b1",
            "48e49e749013023cd33afe446f993a060a518e3ecf21a9782c4a21c02f4a895f",
            "9fa9fde5e760464134ee670a74f3b44b36ab4381d358cbc26fcb4bbc6b9fb4e4",
            "5b50795697ddedc9891e8eec4374ae983457b4e87d5e49f8e7a0fc6514acae94",
            "1fb97be023ae24d9930f66330876ac3501d9df3e867c802cd6a7a2398016eebb",
            "31b4c83dc616decf544c29594deeb414245c75771e1071456bec43bdf921897e",
            "56b2d434bf7464d4adf870ca8d4cb6230c69f30033caa7d7aa555345a4b760ba",
            "b3f922ec5db2de36d0d46998b3d1369fa5a7646b573678ebb5fdb6bfa8bba103",
        ];
        let now: Vec<String> = super::MIGRATIONS
            .iter()
            .map(|m| format!("{:x}", Sha256::digest(m.as_bytes())))
            .collect();
        assert_eq!(now[..released.len()], released, "{now:#?}");
    }
}
