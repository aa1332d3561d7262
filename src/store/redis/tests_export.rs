//! The paged export (`RedisStore::export_paged`): every row handed over exactly once across
//! pages, also where many entries share a score and pages end among them, and while the
//! store changes between pages (the cursor's own entry removed, rows added on both sides of
//! it, a token stored again later, the cleanup putting retired tokens back at the end of
//! their queue); the mark of encryption at rest checked on every page.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::tests::TestPrefix;
use super::RedisStore;
use crate::error::StoreError;
use crate::model::{ClientRecord, RotateRequest, Rotation};
use crate::store::snapshot::{Counts, RowStore, Rows, Sink};
use crate::store::tests::{code_at, token};
use crate::store::TokenStore;

const NOW: i64 = 1_700_000_000_000;
const LATER: i64 = NOW + 3_600_000;

/// Run after each batch a sink takes: the batch's kind and its last key.
type After<'a> = Box<dyn FnMut(&'static str, &str) + 'a>;

/// What an export handed over: how many times each (kind, key), the mark, and a hook run
/// after each batch with the kind and the batch's last key.
struct Tally<'a> {
    times: HashMap<(&'static str, String), u32>,
    mark: Option<Option<String>>,
    estimate: Counts,
    after: After<'a>,
}

impl<'a> Tally<'a> {
    fn new(after: impl FnMut(&'static str, &str) + 'a) -> Self {
        Tally {
            times: HashMap::new(),
            mark: None,
            estimate: Counts::default(),
            after: Box::new(after),
        }
    }

    fn of(&self, kind: &str) -> usize {
        self.times.keys().filter(|(k, _)| *k == kind).count()
    }

    fn twice(&self) -> Vec<&(&'static str, String)> {
        self.times
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k)
            .collect()
    }
}

impl Sink for Tally<'_> {
    fn counts(&mut self, estimate: &Counts, mark: Option<&str>) -> crate::error::Result<()> {
        self.mark = Some(mark.map(str::to_owned));
        self.estimate = *estimate;
        Ok(())
    }

    fn rows(&mut self, rows: Rows) -> crate::error::Result<()> {
        let (kind, keys): (&'static str, Vec<String>) = match rows {
            Rows::AccessTokens(r) => ("token", r.into_iter().map(|r| r.token).collect()),
            Rows::RefreshTokens(r) => ("refresh", r.into_iter().map(|r| r.refresh_token).collect()),
            Rows::RefreshFamilies(r) => ("family", r.into_iter().map(|r| r.0).collect()),
            Rows::RetiredRefreshTokens(r) => {
                ("retired", r.into_iter().map(|r| r.refresh_token).collect())
            }
            Rows::AuthorizationCodes(r) => ("code", r.into_iter().map(|r| r.0).collect()),
            Rows::PendingAuthorizations(r) => ("pending", r.into_iter().map(|r| r.state).collect()),
            Rows::Clients(r) => ("client", r.into_iter().map(|r| r.client_id).collect()),
        };
        for k in &keys {
            *self.times.entry((kind, k.clone())).or_default() += 1;
        }
        if let Some(last) = keys.last() {
            (self.after)(kind, last);
        }
        Ok(())
    }
}

fn rotate(s: &RedisStore, old: &str, new: &str) {
    let r = s
        .rotate_refresh_token(
            &RotateRequest {
                links: None,
                refresh_token: old.into(),
                new_access_token: format!("at-{new}"),
                new_refresh_token: format!("rt-{new}"),
                expires_at: Some(LATER),
                grace_ms: 10_000,
            },
            NOW,
        )
        .unwrap();
    assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
}

/// 500 tokens (250 expiring in the same millisecond, 130 never, the rest one a second),
/// 20 of them rotated; 150 codes and 150 pending authorizations of one expiry; 120
/// clients. In pages of 100, several pages end inside a run of one score.
fn fill(s: &RedisStore) {
    let mut tokens = Vec::new();
    for i in 0..500 {
        let e = match i {
            0..250 => Some(LATER),
            250..380 => None,
            _ => Some(LATER + i64::from(i) * 1000),
        };
        let (t, r) = (format!("t{i:03}"), format!("r{i:03}"));
        tokens.push(token(&t, Some(&r), Some(&format!("u{}", i % 7)), e));
    }
    s.store_access_tokens(&tokens, NOW).unwrap();
    for i in 0..20 {
        rotate(s, &format!("r{:03}", i * 10), &format!("n{i:02}"));
    }
    for i in 0..150 {
        s.store_authorization_code(&format!("c{i:03}"), &code_at(NOW, NOW + 600_000))
            .unwrap();
        s.store_pending_authorization(&format!("p{i:03}"), "{}", NOW + 600_000, NOW)
            .unwrap();
    }
    for i in 0..120 {
        s.put_client(&ClientRecord {
            client_id: format!("cl{i:03}"),
            secret_digest: None,
            metadata: "{}".into(),
            created_at: NOW,
        })
        .unwrap();
    }
}

/// A prefix `fill`ed, its store, and a second store on it (another connection's writes).
fn filled() -> Option<(TestPrefix, RedisStore, RedisStore)> {
    let p = TestPrefix::new()?;
    let (s, writer) = (p.store(), p.store());
    fill(&s);
    Some((p, s, writer))
}

#[test]
fn every_row_is_handed_over_exactly_once_across_pages() {
    let Some((_p, s, _)) = filled() else {
        return;
    };
    let mut tally = Tally::new(|_, _| {});
    let counts = s.export_paged(100, 33, &mut tally).unwrap();
    assert_eq!(tally.twice(), Vec::<&(&str, String)>::new());
    assert_eq!(counts, s.row_counts().unwrap());
    assert_eq!(
        [
            "token", "refresh", "family", "retired", "code", "pending", "client"
        ]
        .map(|k| tally.of(k)),
        [500, 500, 20, 20, 150, 150, 120]
    );
    assert_eq!(tally.mark, Some(None));
    // The progress's estimate, from the indexes' sizes: right here (every token with a
    // refresh token, each rotated one in a family, nothing expired).
    assert_eq!(tally.estimate, counts);
    // One page that holds everything gives the same.
    let mut whole = Tally::new(|_, _| {});
    assert_eq!(s.export_paged(10_000, 1000, &mut whole).unwrap(), counts);
    assert_eq!(whole.times, tally.times);
}

/// Between pages: the token the cursor stands on is removed (the next page finds its
/// place among the entries of its score), tokens of the same expiry are added before and
/// after it, one already handed over is stored again with a later expiry, and the cleanup
/// puts every retired refresh token back at the end of its queue. Every row there from
/// the first page to the last unchanged is handed over, and nothing twice.
#[test]
fn rows_changed_between_pages_are_never_handed_over_twice_nor_missed() {
    let Some((_p, s, writer)) = filled() else {
        return;
    };
    let removed = RefCell::new(Vec::new());
    let (added, cleaned) = (Cell::new(0), Cell::new(false));
    let mut tally = Tally::new(|kind, last| match kind {
        "token" if last.starts_with('t') => {
            writer.delete_token(last).unwrap();
            removed.borrow_mut().push(last.to_owned());
            let n = added.get();
            let more: Vec<_> = ["a", "z"]
                .iter()
                .map(|side| token(&format!("{side}{n:03}"), None, None, Some(LATER)))
                .collect();
            writer.store_access_tokens(&more, NOW).unwrap();
            added.set(n + 1);
            writer
                .store_access_token(&token("t001", Some("r001"), None, Some(LATER + 10_000_000)), NOW)
                .unwrap();
        }
        "retired" if !cleaned.get() => {
            cleaned.set(true);
            writer.cleanup_expired(NOW, 10_000).unwrap();
        }
        _ => {}
    });
    let counts = s.export_paged(10, 10, &mut tally).unwrap();
    assert_eq!(tally.twice(), Vec::<&(&str, String)>::new());
    assert!(cleaned.get() && added.get() > 10, "{} pages of tokens", added.get());
    let removed = removed.take();
    for i in 0..500 {
        let t = format!("t{i:03}");
        let rotated = i % 10 == 0 && i < 200;
        if !rotated && !removed.contains(&t) {
            assert!(tally.times.contains_key(&("token", t.clone())), "{t} missed");
        }
    }
    for i in 0..20 {
        assert!(tally.times.contains_key(&("retired", format!("r{:03}", i * 10))));
    }
    assert_eq!(tally.of("retired"), 20);
    assert_eq!(counts.access_tokens, tally.of("token") as u64);
    assert_eq!(counts.retired_refresh_tokens, 20);
}

/// A store sealed (or rekeyed, or decrypted) during the export fails it, never a backup of
/// rows under two marks; a sealed store's export carries its mark.
#[test]
fn a_mark_changed_during_the_export_fails_it() {
    let Some((p, s, writer)) = filled() else {
        return;
    };
    let meta = format!("{}meta", p.prefix);
    let mut tally = Tally::new(|kind, _| {
        if kind == "token" {
            writer
                .call(false, |c| {
                    c.command(&[b"HSET", meta.as_bytes(), b"seal", b"sealed v2 test"])
                })
                .unwrap();
        }
    });
    match s.export_paged(100, 100, &mut tally) {
        Err(e @ StoreError::EncryptionMismatch(_)) => {
            assert_eq!(e.code(), "ERR_TOKEN_STORAGE_ENCRYPTION_MISMATCH");
            assert!(e.to_string().contains("changed during the export"), "{e}");
        }
        other => panic!("expected ENCRYPTION_MISMATCH, got {other:?}"),
    }
    assert_eq!(tally.mark, Some(None));
    let mut again = Tally::new(|_, _| {});
    s.export_paged(100, 100, &mut again).unwrap();
    assert_eq!(again.mark, Some(Some("sealed v2 test".into())));
}

/// The counts are walked a page at a time too: pages of 7 give what one page of everything
/// gives, and what an export hands over.
#[test]
fn counts_walk_the_indexes_a_page_at_a_time() {
    let Some((_p, s, _)) = filled() else {
        return;
    };
    let counts = s.counts_paged(7).unwrap();
    assert_eq!(counts, s.counts_paged(100_000).unwrap());
    assert_eq!(counts, s.row_counts().unwrap());
    let mut tally = Tally::new(|_, _| {});
    assert_eq!(counts, s.export_paged(100, 100, &mut tally).unwrap());
    assert_eq!(
        [
            counts.access_tokens,
            counts.refresh_tokens,
            counts.refresh_families,
            counts.retired_refresh_tokens,
            counts.authorization_codes,
            counts.pending_authorizations,
            counts.clients
        ],
        [500, 500, 20, 20, 150, 150, 120]
    );
}

/// A client's revocation, a page at a time, takes every token and code of that client and
/// nothing of another's, where pages end inside runs of one expiry among the other
/// client's tokens (each page removes what it reads: the next starts after its cursor).
#[test]
fn a_client_revoked_a_page_at_a_time_loses_every_token_and_code_and_no_other() {
    let Some((_p, s, _)) = filled() else {
        return;
    };
    let mut other = Vec::new();
    for i in 0..300 {
        let mut t = token(&format!("o{i:03}"), Some(&format!("q{i:03}")), Some("uo"), Some(LATER));
        t.client_id = "other".into();
        other.push(t);
    }
    s.store_access_tokens(&other, NOW).unwrap();
    let mut c = code_at(NOW, NOW + 600_000);
    c.client_id = "other".into();
    s.store_authorization_code("oc", &c).unwrap();

    assert_eq!(s.revoke_client_paged("client", 7).unwrap(), 500);
    let counts = s.row_counts().unwrap();
    assert_eq!((counts.access_tokens, counts.authorization_codes), (300, 1));
    assert!(s.get_access_token("t001", NOW).unwrap().is_none());
    assert!(s.get_access_token("at-n03", NOW).unwrap().is_none());
    assert!(s.get_access_token("o123", NOW).unwrap().is_some());
    assert!(s.get_refresh_token("q299", NOW).unwrap().is_some());
    assert_eq!(s.revoke_client_paged("client", 7).unwrap(), 0);
    assert_eq!(s.revoke_client_paged("other", 1000).unwrap(), 300);
    let counts = s.row_counts().unwrap();
    assert_eq!((counts.access_tokens, counts.authorization_codes), (0, 0));
}
