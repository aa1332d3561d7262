//! `StoreError` → JS `Error`: the message, and the error's stable code as `err.code`
//! (`lib/errors.js` gives it its class: `TokenStorageError`, or `TypeError` for an argument).

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, Unknown};
use napi::Env;

use crate::error::StoreError;

/// A store error's stable code, which napi puts on the JS error as `code`.
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

pub type JsError = napi::Error<Code>;
pub type Result<T> = std::result::Result<T, JsError>;

/// A store error as a JS `Error` whose `code` is the error's.
pub fn js_err(e: StoreError) -> JsError {
    JsError::new(Code(e.code()), e.to_string())
}

/// A store error as the rejection of a Promise: a JS error made here, on the JS thread, with
/// its `code`, and handed to napi by reference (a `Task` rejects with `napi::Error`, whose
/// own status codes are napi's).
pub fn rejection(env: &Env, e: StoreError) -> napi::Error {
    // SAFETY: `env` is the live environment of the JS thread this runs on (resolve), and
    // the value is read right after it was made.
    let made = unsafe {
        <JsError as ToNapiValue>::to_napi_value(env.raw(), js_err(e))
            .and_then(|v| Unknown::from_napi_value(env.raw(), v))
    };
    match made {
        Ok(value) => napi::Error::from(value),
        Err(err) => err,
    }
}
