use napi_derive::napi;

#[napi]
pub fn ping() -> u32 { 1 }

pub fn core() -> u32 { 2 }

#[cfg(test)]
mod tests { #[test] fn t() { assert_eq!(super::core(), 2); } }
