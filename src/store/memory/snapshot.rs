//! The memory store's rows as they are (see `store::snapshot`): copied out under its lock
//! (the snapshot), then handed over in batches with the lock released; written under it.

use super::tables::Tables;
use super::MemoryStore;
use crate::error::Result;
use crate::model::{NewAccessToken, RefreshToken};
use crate::store::snapshot::{
    hand_over, import_directly, Counts, Import, PendingRow, RefreshRow, RetiredRow, RowStore, Rows, Sink,
    TokenRow,
};

impl Tables {
    pub(super) fn counts(&self) -> Counts {
        let slots = self.slots.iter().flatten();
        Counts {
            access_tokens: self.by_token.len() as u64,
            refresh_tokens: slots.filter(|s| s.refresh().is_some()).count() as u64,
            authorization_codes: self.codes.len() as u64,
            clients: self.clients.len() as u64,
            pending_authorizations: self.pending.len() as u64,
            refresh_families: self.families.len() as u64,
            retired_refresh_tokens: self.retired.len() as u64,
        }
    }

    /// Every row, in the order a target takes them (clients in registration order, a
    /// token before the family of its refresh token).
    fn rows(&self) -> Vec<Rows> {
        let mut clients: Vec<_> = self.clients.values().collect();
        clients.sort_unstable_by_key(|(seq, _)| *seq);
        let slots = self.slots.iter().flatten();
        let tokens = slots
            .clone()
            .map(|s| TokenRow {
                token: s.token().to_owned(),
                access: Tables::access_token(s),
            })
            .collect();
        let refresh = slots
            .filter_map(|s| {
                let a = Tables::access_token(s);
                Some(RefreshRow {
                    refresh_token: s.refresh()?.to_owned(),
                    refresh: RefreshToken {
                        user_id: a.user_id,
                        client_id: a.client_id,
                        scopes: a.scopes,
                        access_token: s.token().to_owned(),
                        created_at: a.created_at,
                        links: a.links,
                    },
                })
            })
            .collect();
        vec![
            Rows::Clients(clients.into_iter().map(|(_, c)| c.clone()).collect()),
            Rows::AccessTokens(tokens),
            Rows::RefreshTokens(refresh),
            Rows::RefreshFamilies(
                self.families
                    .iter()
                    .map(|(r, f)| (r.to_string(), f.to_string()))
                    .collect(),
            ),
            Rows::RetiredRefreshTokens(
                self.retired
                    .iter()
                    .map(|(r, (f, at))| RetiredRow {
                        refresh_token: r.to_string(),
                        family: f.to_string(),
                        retired_at: *at,
                    })
                    .collect(),
            ),
            Rows::AuthorizationCodes(
                self.codes
                    .iter()
                    .map(|(c, d)| (c.to_string(), d.clone()))
                    .collect(),
            ),
            Rows::PendingAuthorizations(
                self.pending
                    .iter()
                    .map(|(s, (data, at))| PendingRow {
                        state: s.to_string(),
                        data: data.clone(),
                        expires_at: *at,
                    })
                    .collect(),
            ),
        ]
    }

    fn import(&mut self, rows: &Rows) -> Result<()> {
        match rows {
            Rows::AccessTokens(rows) => {
                let tokens: Vec<NewAccessToken> = rows.iter().map(TokenRow::to_new).collect();
                self.check_room(&tokens)?;
                for (t, row) in tokens.iter().zip(rows) {
                    // `now` is the time a token is stored at: its creation time, kept.
                    self.store_access_token(t, row.access.created_at)?;
                }
            }
            // A slot holds its refresh token with its access token.
            Rows::RefreshTokens(_) => {}
            Rows::AuthorizationCodes(rows) => {
                for (code, data) in rows {
                    self.codes.insert(code.as_str().into(), data.clone());
                }
            }
            Rows::Clients(rows) => {
                for c in rows {
                    self.put_client(c)?;
                }
            }
            Rows::PendingAuthorizations(rows) => {
                for p in rows {
                    self.pending
                        .insert(p.state.as_str().into(), (p.data.clone(), p.expires_at));
                }
            }
            Rows::RefreshFamilies(rows) => {
                for (r, f) in rows {
                    self.set_family(r, Some(f));
                }
            }
            Rows::RetiredRefreshTokens(rows) => {
                for r in rows {
                    self.retired.insert(
                        r.refresh_token.as_str().into(),
                        (r.family.as_str().into(), r.retired_at),
                    );
                }
            }
        }
        Ok(())
    }
}

impl RowStore for MemoryStore {
    fn row_counts(&self) -> Result<Counts> {
        Ok(self.tables()?.counts())
    }

    fn export_rows(&self, batch: usize, sink: &mut dyn Sink) -> Result<Counts> {
        let (counts, mark, rows) = {
            let tables = self.tables()?;
            (tables.counts(), tables.seal_mark.clone(), tables.rows())
        };
        hand_over(counts, mark.as_deref(), rows, batch, sink)
    }

    fn import_rows(&self, rows: &Rows) -> Result<()> {
        self.tables()?.import(rows)
    }

    fn import_all(
        &self,
        fill: &mut dyn FnMut(&mut dyn Import) -> Result<Counts>,
    ) -> Result<Counts> {
        let set_mark = |mark: Option<&str>| -> Result<()> {
            self.tables()?.seal_mark = mark.map(str::to_owned);
            Ok(())
        };
        import_directly(self, &set_mark, fill)
    }

    fn revoke_client(&self, client_id: &str) -> Result<u64> {
        let mut tables = self.tables()?;
        let slots: Vec<u32> = (0..tables.slots.len() as u32)
            .filter(|&i| tables.slot(i).is_some_and(|s| s.grant.client_id == client_id))
            .collect();
        for &i in &slots {
            tables.remove_slot(i);
        }
        tables.codes.retain(|_, c| c.client_id != client_id);
        Ok(slots.len() as u64)
    }

    /// Every row goes; the encryption mark stays, as SQLite's and PostgreSQL's `nts_meta`.
    fn clear_rows(&self) -> Result<()> {
        let mut tables = self.tables()?;
        let mark = tables.seal_mark.take();
        *tables = Tables::default();
        tables.seal_mark = mark;
        Ok(())
    }
}
