//! Answers from the plain-Rust store to JS: records as one JSON array each (see `wire.rs`):
//! one string and one `JSON.parse` cost less than a napi call per field.

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
    Stats(NativeStats),
}

pub fn reply(answer: Answer) -> std::result::Result<Reply, StoreError> {
    let count = |n: usize| Reply::Number(u32::try_from(n).unwrap_or(u32::MAX));
    Ok(match answer {
        Answer::Done => Reply::Undefined,
        Answer::Count(n) => count(n),
        Answer::AccessToken(t) => Reply::Json(t.as_ref().map(wire::access_token).transpose()?),
        Answer::AuthorizationCode(c) => {
            Reply::Json(c.as_ref().map(wire::authorization_code).transpose()?)
        }
        Answer::RefreshToken(r) => Reply::Json(r.as_ref().map(wire::refresh_token).transpose()?),
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
                Reply::Stats(stats) => NativeStats::to_napi_value(env, stats),
            }
        }
    }
}
