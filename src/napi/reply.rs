//! Answers from the plain-Rust store to JS: each record as one string (see `wire.rs`), which
//! `lib/operations.js` makes into the contract's object. One string costs less than a napi
//! call per field: measured (benchmark/profile-call.js, a memory-store get hit, 10k
//! JWT-sized tokens), the object made here by `napi_create_object`, `napi_set_named_property`,
//! `napi_create_string_*` and `napi_create_date` calls cost ~3.2 µs against ~1.3 µs for
//! the JSON text (and ~0.9 µs more to parse it in JS).

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::ValueType;
use napi_derive::napi;

use crate::error::StoreError;
use crate::ops::Answer;
use crate::wire;

#[napi(object)]
pub struct NativeStats {
    pub total_tokens: f64,
    pub unique_users: f64,
}

/// An answer as the JS value the JS layer shapes, made on the thread that ran the call.
pub enum Reply {
    Undefined,
    Number(u32),
    Json(Option<String>),
    /// A record in the fields format of `wire.rs`, or null.
    Text(Option<String>),
    Stats(NativeStats),
}

pub fn reply(answer: Answer) -> std::result::Result<Reply, StoreError> {
    let count = |n: usize| Reply::Number(u32::try_from(n).unwrap_or(u32::MAX));
    Ok(match answer {
        Answer::Done => Reply::Undefined,
        Answer::Count(n) => count(n),
        Answer::AccessTokenText(t) => Reply::Text(t),
        Answer::AuthorizationCode(c) => Reply::Text(c.as_ref().map(wire::authorization_code)),
        Answer::RefreshToken(r) => Reply::Text(r.as_ref().map(wire::refresh_token)),
        Answer::Stats(s) => Reply::Stats(NativeStats {
            total_tokens: s.total_tokens as f64,
            unique_users: s.unique_users as f64,
        }),
        Answer::Rotation(r) => Reply::Json(Some(wire::rotation(&r)?)),
        Answer::Client(c) => Reply::Json(c.as_ref().map(wire::client).transpose()?),
        Answer::Ids(ids) => Reply::Json(Some(wire::ids(&ids)?)),
        Answer::Text(text) => Reply::Json(text),
    })
}

impl TypeName for Reply {
    fn type_name() -> &'static str {
        "unknown"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Reply {
    unsafe fn to_napi_value(
        env: napi::sys::napi_env,
        value: Self,
    ) -> napi::Result<napi::sys::napi_value> {
        // SAFETY: each arm hands `env`, as given, to the ToNapiValue of the value it holds.
        unsafe {
            match value {
                Reply::Undefined => <()>::to_napi_value(env, ()),
                Reply::Number(n) => u32::to_napi_value(env, n),
                Reply::Json(json) => Option::<String>::to_napi_value(env, json),
                Reply::Text(Some(text)) => latin1_or_utf8(env, &text),
                Reply::Text(None) => Option::<String>::to_napi_value(env, None),
                Reply::Stats(stats) => NativeStats::to_napi_value(env, stats),
            }
        }
    }
}

/// A JS string of `text`: an ASCII one (every token, key and id the package makes, and the
/// fields format's header) by a copy, without the UTF-8 decoding `napi_create_string_utf8` does.
///
/// # Safety
/// `env` is the live environment of the JS thread this runs on.
unsafe fn latin1_or_utf8(
    env: napi::sys::napi_env,
    text: &str,
) -> napi::Result<napi::sys::napi_value> {
    if !text.is_ascii() {
        // SAFETY: as the caller promises.
        return unsafe { <&str>::to_napi_value(env, text) };
    }
    let mut out = std::ptr::null_mut();
    // SAFETY: `env` as the caller promises; `text` is valid for its length, and every byte of
    // ASCII is the Latin-1 character of the same code.
    let status = unsafe {
        napi::sys::napi_create_string_latin1(
            env,
            text.as_ptr().cast(),
            text.len() as isize,
            &mut out,
        )
    };
    if status != napi::sys::Status::napi_ok {
        return Err(napi::Error::from_reason("could not make a string"));
    }
    Ok(out)
}
