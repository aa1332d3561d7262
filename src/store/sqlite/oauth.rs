//! The rest of the OAuth state on a connection: refresh-token rotation, clients, pending
//! authorizations.

use rusqlite::{params, OptionalExtension};

use super::connection::Db;
use super::rows::{read_client, read_client_id, read_pending, read_retired, read_rotated};
use super::tokens::{delete_access, insert_access};
use crate::error::Result;
use crate::model::{is_expired, ClientRecord, RotateRequest, Rotation};

/// The rest of the OAuth state: rotation, clients, pending authorizations.
impl Db {
    pub(super) fn rotate_refresh_token(&self, req: &RotateRequest, now: i64) -> Result<Rotation> {
        self.write(|c| {
            // One table and scalar subqueries, no join: a join (inner or LEFT) was prepared
            // again for every refresh string bound (see `SELECT_ACCESS`).
            let found = c
                .prepare_cached(
                    "SELECT token, api_key, user_id, client_id, scopes, expires_at,
                            COALESCE((SELECT family FROM nts_refresh_families
                                WHERE refresh_token = ?1), ?1),
                            (SELECT resource FROM nts_token_grants WHERE token = a.token),
                            (SELECT extra FROM nts_token_grants WHERE token = a.token)
                     FROM access_tokens a
                     WHERE token = (SELECT access_token FROM refresh_tokens WHERE refresh_token = ?1)",
                )?
                .query_row([&req.refresh_token], read_rotated)
                .optional()?;
            if let Some((access, old, family)) = found {
                if is_expired(old.expires_at, now) {
                    delete_access(c, &access)?;
                    return Ok(Rotation::Unknown);
                }
                delete_access(c, &access)?;
                c.prepare_cached("DELETE FROM nts_refresh_families WHERE refresh_token = ?1")?
                    .execute([&req.refresh_token])?;
                c.prepare_cached(
                    "INSERT OR REPLACE INTO nts_retired_refresh_tokens
                     (refresh_token, family, retired_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![req.refresh_token, family, now])?;
                let new = req.successor(&old);
                insert_access(c, &new, now, &self.grants)?;
                c.prepare_cached(
                    "INSERT OR REPLACE INTO nts_refresh_families (refresh_token, family)
                     VALUES (?1, ?2)",
                )?
                .execute(params![req.new_refresh_token, family])?;
                return Ok(req.rotated(old));
            }
            let retired: Option<(String, i64)> = c
                .prepare_cached(
                    "SELECT family, retired_at FROM nts_retired_refresh_tokens
                     WHERE refresh_token = ?1",
                )?
                .query_row([&req.refresh_token], read_retired)
                .optional()?;
            let Some((family, at)) = retired else {
                return Ok(Rotation::Unknown);
            };
            if now - at < req.grace_ms {
                return Ok(Rotation::Reused {
                    within_grace: true,
                    revoked: 0,
                });
            }
            // Subqueries, not a join: the join was prepared again for every family bound.
            c.prepare_cached(
                "DELETE FROM access_tokens WHERE token IN
                 (SELECT access_token FROM refresh_tokens WHERE refresh_token IN
                  (SELECT refresh_token FROM nts_refresh_families WHERE family = ?1))",
            )?
            .execute([&family])?;
            let revoked = c
                .prepare_cached(
                    "DELETE FROM refresh_tokens WHERE refresh_token IN
                     (SELECT refresh_token FROM nts_refresh_families WHERE family = ?1)",
                )?
                .execute([&family])?;
            c.prepare_cached("DELETE FROM nts_refresh_families WHERE family = ?1")?
                .execute([&family])?;
            Ok(Rotation::Reused {
                within_grace: false,
                revoked,
            })
        })
    }

    pub(super) fn put_client(&self, client: &ClientRecord) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO nts_clients (client_id, secret_digest, metadata, created_at, seq)
                 VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(seq), 0) + 1 FROM nts_clients))
                 ON CONFLICT (client_id) DO UPDATE SET secret_digest = excluded.secret_digest,
                     metadata = excluded.metadata",
            )?
            .execute(params![
                client.client_id,
                client.secret_digest,
                client.metadata,
                client.created_at
            ])
            .map(|_| ())
        })
    }

    pub(super) fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        self.ensure_in_place()?;
        self.conn
            .prepare_cached(
                "SELECT client_id, secret_digest, metadata, created_at FROM nts_clients
                 WHERE client_id = ?1",
            )
            .and_then(|mut st| st.query_row([client_id], read_client).optional())
            .map_err(|e| self.err(e))
    }

    pub(super) fn client_ids(&self) -> Result<Vec<String>> {
        self.ensure_in_place()?;
        self.conn
            .prepare_cached("SELECT client_id FROM nts_clients ORDER BY seq")
            .and_then(|mut st| st.query_map([], read_client_id)?.collect())
            .map_err(|e| self.err(e))
    }

    pub(super) fn store_pending_authorization(
        &self,
        state: &str,
        data: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO nts_pending_authorizations (state, data, expires_at)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![state, data, expires_at])
            .map(|_| ())
        })
    }

    pub(super) fn take_pending_authorization(
        &self,
        state: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let taken: Option<(String, i64)> = self.write(|c| {
            c.prepare_cached(
                "DELETE FROM nts_pending_authorizations WHERE state = ?1 RETURNING data, expires_at",
            )?
            .query_row([state], read_pending)
            .optional()
        })?;
        Ok(taken
            .filter(|(_, at)| !is_expired(Some(*at), now))
            .map(|(d, _)| d))
    }
}
