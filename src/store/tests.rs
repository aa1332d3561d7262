//! One suite, every backend: each test runs against the memory store, a fresh SQLite file
//! and (with the cargo feature `postgres` and TOKEN_TEST_DATABASE_URL) a fresh PostgreSQL
//! schema: every backend of `backend_list!` (see `every_backend!` at the bottom).

use super::*;
use crate::model::{AuthorizationCode, ClientRecord, NewAccessToken, RotateRequest, Rotation};
use crate::ops::{cleanup_all, consume_authorization_code};

const NOW: i64 = 1_800_000_000_000;
pub(super) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A store plus whatever keeps it alive (the SQLite file's temp folder, the PostgreSQL
/// test schema), dropped after the store: each backend's `Backend::test_store`.
type Fixture = backends::TestStore;

fn memory() -> Fixture {
    <MemorySettings as backends::Backend>::test_store().expect("a memory store")
}

fn sqlite() -> Fixture {
    <SqliteSettings as backends::Backend>::test_store().expect("a SQLite file")
}

/// A PostgreSQL store in a fresh schema of the server `TOKEN_TEST_DATABASE_URL` names
/// (`npm test` starts one), or `None` (the test is skipped, said once) when it is unset
/// outside CI. In CI a missing server fails the test.
#[cfg(feature = "postgres")]
fn postgres() -> Option<Fixture> {
    <PostgresSettings as backends::Backend>::test_store()
}

pub(super) fn token(
    t: &str,
    rt: Option<&str>,
    user: Option<&str>,
    expires_at: Option<i64>,
) -> NewAccessToken {
    NewAccessToken {
        resource: None,
        extra: None,
        links: None,
        token: t.into(),
        refresh_token: rt.map(Into::into),
        api_key: format!("sk-{t}"),
        user_id: user.map(Into::into),
        client_id: "client".into(),
        scopes: vec!["read".into(), "write".into()],
        expires_at,
    }
}

fn code(
    user: Option<&str>,
    challenge: Option<&str>,
    method: Option<&str>,
    expires_at: i64,
) -> AuthorizationCode {
    AuthorizationCode {
        resource: None,
        extra: None,
        user_id: user.map(Into::into),
        api_key: "sk-code".into(),
        client_id: "client".into(),
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: challenge.map(Into::into),
        code_challenge_method: method.map(Into::into),
        scopes: vec!["read".into()],
        expires_at,
        created_at: NOW,
    }
}

/// A code of user `u1` without PKCE or grant fields, made at `created_at`: the fixture of
/// every suite that needs a code but not its details.
pub(super) fn code_at(created_at: i64, expires_at: i64) -> AuthorizationCode {
    AuthorizationCode {
        created_at,
        ..code(Some("u1"), None, None, expires_at)
    }
}

/// A code of user `u1` with an S256 challenge that `VERIFIER` passes.
#[cfg(feature = "postgres")]
pub(super) fn code_with_pkce(expires_at: i64) -> AuthorizationCode {
    code(Some("u1"), Some(CHALLENGE), Some("S256"), expires_at)
}

fn stats(s: &mut dyn TokenStore) -> (u64, u64) {
    let st = s.stats(NOW).expect("stats");
    (st.total_tokens, st.unique_users)
}

fn store_and_get(f: Fixture) {
    let mut f = f;
    let s = f.store.as_mut();
    s.store_access_token(
        &token("at1", Some("rt1"), Some("u1"), Some(NOW + 1000)),
        NOW,
    )
    .unwrap();
    let got = s.get_access_token("at1", NOW).unwrap().expect("stored");
    assert_eq!(got.api_key, "sk-at1");
    assert_eq!(got.user_id.as_deref(), Some("u1"));
    assert_eq!(got.scopes, vec!["read", "write"]);
    assert_eq!(got.refresh_token.as_deref(), Some("rt1"));
    assert_eq!(got.expires_at, Some(NOW + 1000));
    assert_eq!(got.created_at, NOW);
    let r = s.get_refresh_token("rt1", NOW).unwrap().expect("refresh");
    assert_eq!(r.access_token, "at1");
    assert_eq!(r.user_id.as_deref(), Some("u1"));
    assert!(s.get_access_token("missing", NOW).unwrap().is_none());
}

fn null_user_and_no_refresh(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_access_token(&token("at1", Some(""), None, None), NOW)
        .unwrap();
    let got = s.get_access_token("at1", NOW).unwrap().expect("stored");
    assert_eq!(got.user_id, None);
    assert_eq!(got.refresh_token, None);
    assert_eq!(got.expires_at, None);
    assert_eq!(stats(s), (1, 0));
}

fn replacing_a_token_drops_its_old_refresh_token(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_access_token(&token("at1", Some("rt1"), Some("u1"), None), NOW)
        .unwrap();
    s.store_access_token(&token("at1", Some("rt2"), Some("u2"), None), NOW)
        .unwrap();
    assert!(s.get_refresh_token("rt1", NOW).unwrap().is_none());
    assert_eq!(
        s.get_refresh_token("rt2", NOW)
            .unwrap()
            .unwrap()
            .access_token,
        "at1"
    );
    assert_eq!(stats(s), (1, 1));
}

fn reusing_a_refresh_string_detaches_it_from_the_old_token(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_access_token(&token("at1", Some("rt"), Some("u1"), None), NOW)
        .unwrap();
    s.store_access_token(&token("at2", Some("rt"), Some("u1"), None), NOW)
        .unwrap();
    assert_eq!(
        s.get_access_token("at1", NOW)
            .unwrap()
            .unwrap()
            .refresh_token,
        None
    );
    assert_eq!(
        s.get_refresh_token("rt", NOW)
            .unwrap()
            .unwrap()
            .access_token,
        "at2"
    );
    // Deleting the old token must not take the new token's refresh token with it.
    s.delete_token("at1").unwrap();
    assert!(s.get_refresh_token("rt", NOW).unwrap().is_some());
}

fn expired_tokens_are_removed_on_read(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_access_token(&token("at1", Some("rt1"), Some("u1"), Some(NOW)), NOW - 10)
        .unwrap();
    assert!(s.get_access_token("at1", NOW - 1).unwrap().is_some());
    // The refresh token dies with its access token, even if nothing read that first.
    assert!(s.get_refresh_token("rt1", NOW).unwrap().is_none());
    assert!(s.get_access_token("at1", NOW).unwrap().is_none());
    assert!(s.get_refresh_token("rt1", NOW - 1).unwrap().is_none());
    assert_eq!(stats(s), (0, 0));
}

fn delete_and_revoke(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_access_token(&token("at1", Some("rt1"), Some("u1"), None), NOW)
        .unwrap();
    s.store_access_token(&token("at2", Some("rt2"), Some("u1"), None), NOW)
        .unwrap();
    s.delete_token("at1").unwrap();
    assert!(s.get_access_token("at1", NOW).unwrap().is_none());
    assert!(s.get_refresh_token("rt1", NOW).unwrap().is_none());
    s.revoke_refresh_token("rt2").unwrap();
    assert!(s.get_access_token("at2", NOW).unwrap().is_none());
    assert!(s.get_refresh_token("rt2", NOW).unwrap().is_none());
    s.delete_token("never").unwrap();
    s.revoke_refresh_token("never").unwrap();
    assert_eq!(stats(s), (0, 0));
}

fn delete_user_tokens_removes_only_that_user(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_access_token(&token("a1", Some("r1"), Some("u1"), None), NOW)
        .unwrap();
    s.store_access_token(&token("a2", Some("r2"), Some("u1"), None), NOW)
        .unwrap();
    s.store_access_token(&token("b1", Some("r3"), Some("u2"), None), NOW)
        .unwrap();
    s.store_access_token(&token("n1", None, None, None), NOW)
        .unwrap();
    s.store_authorization_code("c1", &code(Some("u1"), None, None, NOW + 1000))
        .unwrap();
    s.store_authorization_code("c2", &code(Some("u2"), None, None, NOW + 1000))
        .unwrap();
    assert_eq!(stats(s), (4, 2));
    // The count is the user's access tokens removed (the command line's `revoke --user`).
    assert_eq!(s.delete_user_tokens("u1").unwrap(), 2);
    assert_eq!(s.delete_user_tokens("u1").unwrap(), 0);
    assert!(s.get_access_token("a1", NOW).unwrap().is_none());
    assert!(s.get_refresh_token("r2", NOW).unwrap().is_none());
    assert!(s.take_authorization_code("c1", NOW).unwrap().is_none());
    assert!(s.get_access_token("b1", NOW).unwrap().is_some());
    assert!(s.get_access_token("n1", NOW).unwrap().is_some());
    assert!(s.take_authorization_code("c2", NOW).unwrap().is_some());
    // "" stands for "no user" in the file; it must never match the tokens without one.
    assert_eq!(s.delete_user_tokens("").unwrap(), 0);
    assert_eq!(stats(s), (2, 1));
}

fn codes_are_single_use_and_pkce_checked(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_authorization_code(
        "c1",
        &code(Some("u1"), Some(CHALLENGE), Some("S256"), NOW + 600_000),
    )
    .unwrap();
    let got = consume_authorization_code(s, "c1", Some(VERIFIER), NOW)
        .unwrap()
        .expect("code");
    assert_eq!(got.redirect_uri, "https://app.example/cb");
    assert_eq!(got.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(got.expires_at, NOW + 600_000);
    assert!(consume_authorization_code(s, "c1", Some(VERIFIER), NOW)
        .unwrap()
        .is_none());

    // A failed PKCE check uses the code up too.
    s.store_authorization_code("c2", &code(None, Some(CHALLENGE), Some("S256"), NOW + 1000))
        .unwrap();
    let wrong = "x".repeat(43);
    assert!(consume_authorization_code(s, "c2", Some(&wrong), NOW)
        .unwrap()
        .is_none());
    assert!(consume_authorization_code(s, "c2", Some(VERIFIER), NOW)
        .unwrap()
        .is_none());

    s.store_authorization_code("c3", &code(None, Some(VERIFIER), Some("plain"), NOW + 1000))
        .unwrap();
    assert!(consume_authorization_code(s, "c3", Some(CHALLENGE), NOW)
        .unwrap()
        .is_none());
    s.store_authorization_code("c4", &code(None, Some(VERIFIER), Some("plain"), NOW + 1000))
        .unwrap();
    assert!(consume_authorization_code(s, "c4", Some(VERIFIER), NOW)
        .unwrap()
        .is_some());

    s.store_authorization_code("c5", &code(None, None, None, NOW + 1000))
        .unwrap();
    let plain = consume_authorization_code(s, "c5", None, NOW)
        .unwrap()
        .expect("no pkce");
    assert_eq!(plain.user_id, None);
}

fn expired_codes_are_refused_and_removed(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_authorization_code("c1", &code(None, None, None, NOW))
        .unwrap();
    assert!(consume_authorization_code(s, "c1", None, NOW)
        .unwrap()
        .is_none());
    s.store_authorization_code("c2", &code(None, None, None, NOW))
        .unwrap();
    assert_eq!(s.cleanup_expired(NOW, 10).unwrap(), 1);
    assert!(s
        .take_authorization_code("c2", NOW - 100)
        .unwrap()
        .is_none());
}

fn cleanup_counts_and_batches(mut f: Fixture) {
    let s = f.store.as_mut();
    for i in 0..25 {
        let exp = if i % 5 == 0 {
            Some(NOW + 1000)
        } else {
            Some(NOW - 1)
        };
        s.store_access_token(
            &token(
                &format!("a{i}"),
                Some(&format!("r{i}")),
                Some(&format!("u{}", i % 3)),
                exp,
            ),
            NOW - 100,
        )
        .unwrap();
    }
    s.store_access_token(&token("forever", None, Some("u9"), None), NOW)
        .unwrap();
    s.store_authorization_code("old", &code(None, None, None, NOW - 1))
        .unwrap();
    assert_eq!(s.cleanup_expired(NOW, 7).unwrap(), 7);
    assert_eq!(cleanup_all(s, NOW, 7).unwrap(), 14);
    assert_eq!(s.cleanup_expired(NOW, 7).unwrap(), 0);
    assert!(s.get_refresh_token("r1", NOW - 200).unwrap().is_none());
    assert!(s.get_refresh_token("r5", NOW).unwrap().is_some());
    assert_eq!(stats(s), (6, 4));
}

fn stats_count_only_live_tokens(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_access_token(&token("a", None, Some("u1"), Some(NOW - 1)), NOW - 10)
        .unwrap();
    s.store_access_token(&token("b", None, Some("u2"), Some(NOW + 1)), NOW)
        .unwrap();
    s.store_access_token(&token("c", None, Some("u2"), None), NOW)
        .unwrap();
    assert_eq!(stats(s), (2, 1));
    s.delete_token("c").unwrap();
    assert_eq!(stats(s), (1, 1));
    assert_eq!(s.stats(NOW + 1).unwrap().total_tokens, 0);
}

/// getStats leaves out expired tokens that nothing removed, by whole buckets of time for
/// past minutes and row by row for the current one: checked against a recount of a model
/// at every few seconds over twelve minutes, across bucket edges, with replaced and
/// deleted tokens, users whose tokens expire at different times, and tokens that never do.
fn stats_agree_with_a_recount_as_time_passes(mut f: Fixture) {
    use std::collections::{HashMap, HashSet};
    let s = f.store.as_mut();
    let mut model: HashMap<String, (Option<String>, Option<i64>)> = HashMap::new();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 0..600 {
        let name = format!("t{}", next(150));
        match next(10) {
            0 => {
                s.delete_token(&name).unwrap();
                model.remove(&name);
            }
            1 => {
                let user = format!("u{}", next(25));
                s.delete_user_tokens(&user).unwrap();
                model.retain(|_, (u, _)| u.as_deref() != Some(user.as_str()));
            }
            _ => {
                let user = (next(6) > 0).then(|| format!("u{}", next(25)));
                // Expiries from 5 minutes before NOW to 7 after, a few exactly on a
                // bucket edge, and one token in eight that never expires.
                let exp = match next(8) {
                    0 => None,
                    1 => Some(((NOW >> 16) + next(12) as i64 - 5) << 16),
                    _ => Some(NOW - 300_000 + next(720_000) as i64),
                };
                s.store_access_token(&token(&name, None, user.as_deref(), exp), NOW - 400_000)
                    .unwrap();
                model.insert(name, (user, exp));
            }
        }
        if step % 50 != 49 {
            continue;
        }
        for k in 0..=103 {
            let now = NOW - 310_000 + k * 7_013;
            let live: Vec<_> = model
                .values()
                .filter(|(_, e)| e.is_none_or(|e| e > now))
                .collect();
            let users: HashSet<_> = live.iter().filter_map(|(u, _)| u.as_deref()).collect();
            let got = s.stats(now).unwrap();
            assert_eq!(
                (got.total_tokens, got.unique_users),
                (live.len() as u64, users.len() as u64),
                "step {step}, now {now}"
            );
        }
    }
}

/// A code stored again under the same string replaces the first, user and all: the second
/// is what a consume gets, once, and the first user's removal no longer reaches it.
fn a_code_stored_again_replaces_the_first(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_authorization_code("c1", &code(Some("u1"), None, None, NOW + 600_000))
        .unwrap();
    let mut second = code(Some("u2"), None, None, NOW + 900_000);
    second.redirect_uri = "https://other.example/cb".into();
    s.store_authorization_code("c1", &second).unwrap();
    s.delete_user_tokens("u1").unwrap();
    let got = s
        .take_authorization_code("c1", NOW)
        .unwrap()
        .expect("the second code");
    assert_eq!(
        (
            got.user_id.as_deref(),
            got.redirect_uri.as_str(),
            got.expires_at
        ),
        (Some("u2"), "https://other.example/cb", NOW + 900_000)
    );
    assert!(s.take_authorization_code("c1", NOW).unwrap().is_none());
    // The new user's removal reaches it: stored for u2, then for u1, u1's removal takes it.
    s.store_authorization_code("c2", &code(Some("u2"), None, None, NOW + 600_000))
        .unwrap();
    s.store_authorization_code("c2", &code(Some("u1"), None, None, NOW + 600_000))
        .unwrap();
    s.delete_user_tokens("u1").unwrap();
    assert!(s.take_authorization_code("c2", NOW).unwrap().is_none());
}

/// A code stored without PKCE comes back without a challenge or method.
fn codes_without_pkce_round_trip(mut f: Fixture) {
    let s = f.store.as_mut();
    s.store_authorization_code("c1", &code(Some("u"), None, None, NOW + 1000))
        .unwrap();
    let got = consume_authorization_code(s, "c1", None, NOW)
        .unwrap()
        .expect("a code without PKCE needs no verifier");
    assert_eq!(
        (got.code_challenge, got.code_challenge_method),
        (None, None)
    );
}

fn unusual_strings_round_trip(mut f: Fixture) {
    let s = f.store.as_mut();
    let nul = "nul\0byte";
    s.open().unwrap();
    let sealed = s.seal_mark().unwrap().0.is_some();
    if s.kind() == "postgres" && sealed {
        // Sealed, a token's string never reaches the server (its digest does).
        s.store_access_token(&token(nul, None, None, None), NOW)
            .unwrap();
        assert!(s.get_access_token(nul, NOW).unwrap().is_some());
        s.delete_token(nul).unwrap();
    } else if s.kind() == "postgres" {
        // PostgreSQL's text has no NUL: refused as an argument, never found.
        let e = s
            .store_access_token(&token(nul, None, None, None), NOW)
            .unwrap_err();
        assert_eq!(e.code(), "ERR_TOKEN_STORAGE_INVALID_ARGUMENT");
        assert_eq!(s.get_access_token(nul, NOW).unwrap(), None);
        s.delete_token(nul).unwrap();
    }
    let odd = [
        if s.kind() == "postgres" {
            "nul-free"
        } else {
            nul
        },
        "'; DROP TABLE access_tokens; --",
        "ünïcødé 🚀",
        &"x".repeat(1 << 20),
    ];
    for (i, t) in odd.iter().enumerate() {
        let mut n = token(t, Some(&format!("{t}-r")), Some(t), None);
        n.scopes = vec![t.to_string(), String::new()];
        n.api_key = format!("key{i}");
        s.store_access_token(&n, NOW).unwrap();
        let got = s.get_access_token(t, NOW).unwrap().expect("stored");
        assert_eq!(got.user_id.as_deref(), Some(*t));
        assert_eq!(got.scopes, vec![t.to_string(), String::new()]);
        assert_eq!(got.api_key, format!("key{i}"));
    }
    assert_eq!(stats(s), (4, 4));
}

fn bulk_store_is_all_or_nothing(mut f: Fixture) {
    let s = f.store.as_mut();
    let batch: Vec<_> = (0..50)
        .map(|i| token(&format!("b{i}"), Some(&format!("br{i}")), Some("u1"), None))
        .collect();
    s.store_access_tokens(&batch, NOW).unwrap();
    assert_eq!(stats(s), (50, 1));
    assert_eq!(
        s.get_refresh_token("br7", NOW)
            .unwrap()
            .unwrap()
            .access_token,
        "b7"
    );
    let mut bad: Vec<_> = (0..5)
        .map(|i| token(&format!("c{i}"), None, Some("u2"), None))
        .collect();
    bad.push(token("", None, None, None));
    assert!(crate::ops::store_access_tokens(s, &bad, NOW).is_err());
    assert!(s.get_access_token("c0", NOW).unwrap().is_none());
    assert_eq!(stats(s), (50, 1));
}

fn rotate(s: &dyn TokenStore, old: &str, new: &str, now: i64) -> Rotation {
    s.rotate_refresh_token(
        &RotateRequest {
            links: None,
            refresh_token: old.into(),
            new_access_token: format!("at-{new}"),
            new_refresh_token: format!("rt-{new}"),
            expires_at: Some(NOW + 3_600_000),
            grace_ms: 10_000,
        },
        now,
    )
    .unwrap()
}

fn rotation_issues_a_new_pair_and_revokes_the_family_on_reuse(f: Fixture) {
    let s = f.store.as_ref();
    let mut t = token("at-1", Some("rt-1"), Some("u1"), Some(NOW + 1000));
    t.scopes = vec!["mcp".into()];
    s.store_access_token(&t, NOW).unwrap();
    s.store_access_token(&token("other", Some("rt-other"), Some("u1"), None), NOW)
        .unwrap();
    let Rotation::Rotated(r) = rotate(s, "rt-1", "2", NOW) else {
        panic!("not rotated");
    };
    assert_eq!(
        (
            r.user_id.as_deref(),
            r.client_id.as_str(),
            r.api_key.as_str()
        ),
        (Some("u1"), "client", "sk-at-1")
    );
    assert_eq!(
        (r.access_token.as_str(), r.refresh_token.as_str()),
        ("at-2", "rt-2")
    );
    assert_eq!(r.scopes, vec!["mcp".to_string()]);
    assert!(s.get_access_token("at-1", NOW).unwrap().is_none());
    assert!(s.get_refresh_token("rt-1", NOW).unwrap().is_none());
    let new = s.get_access_token("at-2", NOW).unwrap().expect("new pair");
    assert_eq!(new.refresh_token.as_deref(), Some("rt-2"));
    assert_eq!(new.expires_at, Some(NOW + 3_600_000));
    assert_eq!(new.api_key, "sk-at-1");
    // The old token again within the grace period: refused, nothing revoked.
    assert_eq!(
        rotate(s, "rt-1", "x", NOW + 5_000),
        Rotation::Reused {
            within_grace: true,
            revoked: 0
        }
    );
    assert!(s.get_access_token("at-x", NOW).unwrap().is_none());
    assert!(matches!(
        rotate(s, "rt-2", "3", NOW + 6_000),
        Rotation::Rotated(_)
    ));
    // A replay after it: the whole family goes (at-3/rt-3), other grants stay.
    assert_eq!(
        rotate(s, "rt-1", "y", NOW + 60_000),
        Rotation::Reused {
            within_grace: false,
            revoked: 1
        }
    );
    assert!(s.get_access_token("at-3", NOW).unwrap().is_none());
    assert!(s.get_refresh_token("rt-3", NOW).unwrap().is_none());
    assert!(s.get_access_token("other", NOW).unwrap().is_some());
    assert_eq!(rotate(s, "rt-3", "z", NOW + 61_000), Rotation::Unknown);
    assert_eq!(rotate(s, "never-issued", "z", NOW), Rotation::Unknown);
    // Cleanup forgets rotated-away tokens whose grant has no live token left.
    s.cleanup_expired(NOW + 62_000, 100).unwrap();
    assert_eq!(rotate(s, "rt-1", "v", NOW + 63_000), Rotation::Unknown);
    // An expired pair is not rotated.
    s.store_access_token(
        &token("at-old", Some("rt-old"), Some("u2"), Some(NOW - 1)),
        NOW,
    )
    .unwrap();
    assert_eq!(rotate(s, "rt-old", "w", NOW), Rotation::Unknown);
    assert!(s.get_access_token("at-w", NOW).unwrap().is_none());
}

fn clients_are_stored_replaced_and_listed_in_order(f: Fixture) {
    let s = f.store.as_ref();
    let client = |id: &str, meta: &str, at: i64| ClientRecord {
        client_id: id.into(),
        secret_digest: Some(format!("digest-{id}")),
        metadata: meta.into(),
        created_at: at,
    };
    assert_eq!(s.get_client("c1").unwrap(), None);
    s.put_client(&client("c2", r#"{"a":1}"#, NOW)).unwrap();
    s.put_client(&client("c1", r#"{"b":2}"#, NOW + 1)).unwrap();
    s.put_client(&client("c2", r#"{"a":3}"#, NOW + 2)).unwrap();
    assert_eq!(s.get_client("c2").unwrap().unwrap().metadata, r#"{"a":3}"#);
    assert_eq!(
        s.get_client("c1")
            .unwrap()
            .unwrap()
            .secret_digest
            .as_deref(),
        Some("digest-c1")
    );
    assert_eq!(s.client_ids().unwrap(), vec!["c2".to_string(), "c1".into()]);
}

fn pending_authorizations_are_single_use_and_expire(f: Fixture) {
    let s = f.store.as_ref();
    s.store_pending_authorization("st-1", r#"{"v":1}"#, NOW + 1000, NOW)
        .unwrap();
    s.store_pending_authorization("st-2", r#"{"v":2}"#, NOW + 1000, NOW)
        .unwrap();
    s.store_pending_authorization("st-3", r#"{"v":3}"#, NOW - 1, NOW)
        .unwrap();
    assert_eq!(
        s.take_pending_authorization("st-1", NOW)
            .unwrap()
            .as_deref(),
        Some(r#"{"v":1}"#)
    );
    assert_eq!(s.take_pending_authorization("st-1", NOW).unwrap(), None);
    assert_eq!(s.take_pending_authorization("st-3", NOW).unwrap(), None);
    assert_eq!(
        s.take_pending_authorization("st-2", NOW + 1000).unwrap(),
        None
    );
    s.store_pending_authorization("st-4", "{}", NOW - 1, NOW)
        .unwrap();
    assert_eq!(s.cleanup_expired(NOW, 100).unwrap(), 1);
}

/// The text a store answers to JS for an access token is `wire::access_token` of the record
/// it answers (the memory store writes it from its slot, the others from the record), and
/// `None` for an unknown or expired token (which goes, as on `get_access_token`).
fn access_token_text_is_the_record_written(f: Fixture) {
    let s = &*f.store;
    s.store_access_token(
        &token("at1", Some("rt1"), Some("u1"), Some(NOW + 1000)),
        NOW,
    )
    .unwrap();
    s.store_access_token(&token("at2", None, None, None), NOW)
        .unwrap();
    s.store_access_token(&token("at3", Some("rt3"), Some("u3"), Some(NOW + 10)), NOW)
        .unwrap();
    for t in ["at1", "at2"] {
        let record = s.get_access_token(t, NOW).unwrap().unwrap();
        let text = s.get_access_token_text(t, NOW).unwrap();
        assert_eq!(text, Some(crate::wire::access_token(&record)));
    }
    assert_eq!(s.get_access_token_text("unknown", NOW).unwrap(), None);
    assert_eq!(s.get_access_token_text("at3", NOW + 10).unwrap(), None);
    assert_eq!(s.get_access_token("at3", NOW).unwrap(), None);
    assert_eq!(s.get_refresh_token("rt3", NOW).unwrap(), None);
}

/// A grant's resource and extra (issue 20): kept with a token (alone and in a batch) and a
/// code, given back by every read, carried by a rotation to the new pair, and gone with
/// their token or code: a token or code stored again under the same string without them
/// has none, nor has any token stored without them.
fn grant_fields_round_trip(f: Fixture) {
    let s = &*f.store;
    let resource = Some("https://mcp.example/mcp".to_owned());
    let extra = Some(r#"{"apiKey":"upstream-secret","n":1}"#.to_owned());
    let mut t = token("g1", Some("gr1"), Some("u1"), Some(NOW + 60_000));
    t.resource = resource.clone();
    t.extra = extra.clone();
    s.store_access_token(&t, NOW).unwrap();
    let mut only_extra = token("g2", None, None, None);
    only_extra.extra = Some("{}".into());
    let mut only_resource = token("g3", None, None, None);
    only_resource.resource = resource.clone();
    s.store_access_tokens(
        &[only_extra, only_resource, token("g4", None, None, None)],
        NOW,
    )
    .unwrap();
    let got = s.get_access_token("g1", NOW).unwrap().expect("g1");
    assert_eq!((&got.resource, &got.extra), (&resource, &extra));
    assert_eq!(
        s.get_access_token_text("g1", NOW).unwrap(),
        Some(crate::wire::access_token(&got))
    );
    let g2 = s.get_access_token("g2", NOW).unwrap().expect("g2");
    assert_eq!((g2.resource, g2.extra.as_deref()), (None, Some("{}")));
    let g3 = s.get_access_token("g3", NOW).unwrap().expect("g3");
    assert_eq!((&g3.resource, g3.extra), (&resource, None));
    let g4 = s.get_access_token("g4", NOW).unwrap().expect("g4");
    assert_eq!((g4.resource, g4.extra), (None, None));

    // A rotation carries them to the new access token.
    let Rotation::Rotated(_) = rotate(s, "gr1", "g5", NOW) else {
        panic!("rotated");
    };
    let g5 = s.get_access_token("at-g5", NOW).unwrap().expect("g5");
    assert_eq!((&g5.resource, &g5.extra), (&resource, &extra));
    assert_eq!(g5.api_key, "sk-g1");
    assert_eq!(s.get_access_token("g1", NOW).unwrap(), None);

    // Replaced, or deleted and stored again, without them: none.
    s.store_access_token(&token("at-g5", None, Some("u1"), None), NOW)
        .unwrap();
    let g5 = s.get_access_token("at-g5", NOW).unwrap().expect("g5 again");
    assert_eq!((g5.resource, g5.extra), (None, None));
    s.delete_token("g2").unwrap();
    s.store_access_token(&token("g2", None, None, None), NOW)
        .unwrap();
    let g2 = s.get_access_token("g2", NOW).unwrap().expect("g2 again");
    assert_eq!((g2.resource, g2.extra), (None, None));
    s.delete_user_tokens("u1").unwrap();
    let mut again = token("g1", None, None, None);
    again.user_id = None;
    s.store_access_token(&again, NOW).unwrap();
    let g1 = s.get_access_token("g1", NOW).unwrap().expect("g1 again");
    assert_eq!((g1.resource, g1.extra), (None, None));

    // Codes: kept, given back once, and a code replaced without them has none.
    let mut c = code(Some("u1"), None, None, NOW + 60_000);
    c.resource = resource.clone();
    c.extra = extra.clone();
    s.store_authorization_code("gc1", &c).unwrap();
    s.store_authorization_code("gc2", &c).unwrap();
    s.store_authorization_code("gc2", &code(Some("u1"), None, None, NOW + 60_000))
        .unwrap();
    let taken = s.take_authorization_code("gc1", NOW).unwrap().expect("gc1");
    assert_eq!(taken, c);
    assert_eq!(s.take_authorization_code("gc1", NOW).unwrap(), None);
    let taken = s.take_authorization_code("gc2", NOW).unwrap().expect("gc2");
    assert_eq!((taken.resource, taken.extra), (None, None));
    s.store_authorization_code("gc1", &code(Some("u1"), None, None, NOW + 60_000))
        .unwrap();
    let taken = s
        .take_authorization_code("gc1", NOW)
        .unwrap()
        .expect("gc1 again");
    assert_eq!((taken.resource, taken.extra), (None, None));
}

/// Each case below, on every backend of `backend_list!` (`mod.rs`): a module per backend,
/// a test per case (`sqlite::store_and_get`), skipped where `test_store` gives no store.
macro_rules! every_backend {
    ($cases:tt $( $(#[doc = $doc:literal])* $kind:ident :: $Settings:ident $(if feature $feature:literal else $name:literal)? ; )*) => {
        $(
            $(#[cfg(feature = $feature)])?
            mod $kind {
                use super::super::backends::Backend;
                type Settings = super::super::$kind::$Settings;
                cases! $cases;
            }
        )*
    };
}

/// The tests of one backend (`Settings`), one per case; the first group also through a
/// sealed store (`tests_sealed.rs`: `sqlite::sealed::store_and_get`), the second (backups
/// and copies, refused on a sealed store) not.
macro_rules! cases {
    ([$($case:ident),* $(,)?] [$($plain:ident),* $(,)?]) => {
        $( #[test] fn $case() { if let Some(f) = Settings::test_store() { super::$case(f); } } )*
        $( #[test] fn $plain() { if let Some(f) = Settings::test_store() { super::$plain(f); } } )*
        mod sealed {
            use super::Backend;
            $( #[test] fn $case() {
                if let Some(f) = super::Settings::test_store() { super::super::$case(super::super::super::tests_sealed::sealed(f)); }
            } )*
        }
    };
}

backend_list!(every_backend
    [
        store_and_get,
        null_user_and_no_refresh,
        replacing_a_token_drops_its_old_refresh_token,
        reusing_a_refresh_string_detaches_it_from_the_old_token,
        expired_tokens_are_removed_on_read,
        delete_and_revoke,
        delete_user_tokens_removes_only_that_user,
        codes_are_single_use_and_pkce_checked,
        expired_codes_are_refused_and_removed,
        cleanup_counts_and_batches,
        stats_count_only_live_tokens,
        stats_agree_with_a_recount_as_time_passes,
        codes_without_pkce_round_trip,
        a_code_stored_again_replaces_the_first,
        unusual_strings_round_trip,
        bulk_store_is_all_or_nothing,
        rotation_issues_a_new_pair_and_revokes_the_family_on_reuse,
        clients_are_stored_replaced_and_listed_in_order,
        pending_authorizations_are_single_use_and_expire,
        access_token_text_is_the_record_written,
        grant_fields_round_trip,
    ]
    [
        backup_keeps_everything,
        backup_refuses_a_file_already_there,
        copy_into_each_store,
        revoking_a_client_removes_its_tokens_and_codes,
    ]
);

// Backups and copies, in a file of their own.
use super::tests_snapshot::{
    backup_keeps_everything, backup_refuses_a_file_already_there, copy_into_each_store,
    revoking_a_client_removes_its_tokens_and_codes,
};

#[test]
fn memory_and_sqlite_agree_on_random_sequences() {
    agree_on_random_sequences(sqlite, 40);
}

#[test]
#[cfg(feature = "postgres")]
fn memory_and_postgres_agree_on_random_sequences() {
    if postgres().is_some() {
        agree_on_random_sequences(|| postgres().expect("server"), 10);
    }
}

#[test]
#[cfg(feature = "redis")]
fn memory_and_redis_agree_on_random_sequences() {
    let redis = || <RedisSettings as backends::Backend>::test_store();
    if redis().is_some() {
        agree_on_random_sequences(|| redis().expect("server"), 10);
    }
}

/// Differential test: the same seeded random sequences of calls (on a small key space, so
/// that replacing, re-using refresh strings, expiry and deletes all collide often) must
/// give the same answers from the memory store and `other`.
fn agree_on_random_sequences(other: impl Fn() -> Fixture, seeds: u64) {
    /// xorshift64*: a seeded generator, so a failure names its seed and replays.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }
    for seed in 1..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (m, q) = (memory(), other());
        let mut now = NOW;
        for step in 0..250 {
            now += rng.below(3) as i64;
            let key = |rng: &mut Rng, p: &str| format!("{p}{}", rng.below(6));
            let ctx = format!("seed {seed} step {step}");
            match rng.below(9) {
                0 | 1 => {
                    let rt = (rng.below(3) > 0).then(|| key(&mut rng, "r"));
                    let user = (rng.below(4) > 0).then(|| key(&mut rng, "u"));
                    let exp = match rng.below(3) {
                        0 => None,
                        _ => Some(now + rng.below(8) as i64 - 2),
                    };
                    let t = token(&key(&mut rng, "a"), rt.as_deref(), user.as_deref(), exp);
                    m.store.store_access_token(&t.clone(), now).unwrap();
                    q.store.store_access_token(&t, now).unwrap();
                }
                2 => {
                    let k = key(&mut rng, "a");
                    let a = m.store.get_access_token(&k, now).unwrap();
                    assert_eq!(a, q.store.get_access_token(&k, now).unwrap(), "{ctx}");
                }
                3 => {
                    let k = key(&mut rng, "r");
                    let a = m.store.get_refresh_token(&k, now).unwrap();
                    assert_eq!(a, q.store.get_refresh_token(&k, now).unwrap(), "{ctx}");
                }
                4 => {
                    let k = key(&mut rng, "r");
                    m.store.revoke_refresh_token(&k).unwrap();
                    q.store.revoke_refresh_token(&k).unwrap();
                }
                5 => {
                    let k = key(&mut rng, "a");
                    m.store.delete_token(&k).unwrap();
                    q.store.delete_token(&k).unwrap();
                }
                6 => {
                    let k = key(&mut rng, "u");
                    m.store.delete_user_tokens(&k).unwrap();
                    q.store.delete_user_tokens(&k).unwrap();
                }
                7 => {
                    let limit = 1 + rng.below(3) as usize;
                    let a = m.store.cleanup_expired(now, limit).unwrap();
                    assert_eq!(a, q.store.cleanup_expired(now, limit).unwrap(), "{ctx}");
                }
                _ => {
                    let a = m.store.stats(now).unwrap();
                    assert_eq!(a, q.store.stats(now).unwrap(), "{ctx}");
                }
            }
        }
    }
}
