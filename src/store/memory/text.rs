//! A slot's strings (its token, refresh token and sealed links, end to end): inside the
//! slot when they are short (a pair of 64-character tokens, as `randomBytes(32)` in hex
//! gives, fits), else in a heap block of their own. Inside the slot, a look-up compares the
//! token in the cache lines it loaded to reach the slot, where a block elsewhere cost one
//! more cache miss (and at a million tokens a page walk) per get (PROFILE.md, "Memory at
//! 1M: the tokens inside the slot").

/// Bytes kept inside the slot: two 64-character tokens.
const INLINE: usize = 128;

/// Private to this file, so that only `new` makes one: `as_str` relies on what it wrote.
pub(super) struct Text(Repr);

enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Text {
    /// `parts`, end to end.
    pub(super) fn new(parts: &[&str]) -> Text {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        match u8::try_from(len) {
            Ok(short) if len <= INLINE => {
                let mut bytes = [0u8; INLINE];
                let mut at = 0;
                for p in parts {
                    if let Some(to) = bytes.get_mut(at..at + p.len()) {
                        to.copy_from_slice(p.as_bytes());
                    }
                    at += p.len();
                }
                Text(Repr::Inline { len: short, bytes })
            }
            _ => Text(Repr::Heap(parts.concat().into_boxed_str())),
        }
    }

    pub(super) fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let used = bytes.get(..*len as usize).unwrap_or_default();
                // SAFETY: `new` copied whole `&str`s end to end into `bytes[..len]`, so those
                // bytes are UTF-8, and they are never changed afterwards.
                unsafe { std::str::from_utf8_unchecked(used) }
            }
            Repr::Heap(s) => s,
        }
    }

    pub(super) fn len(&self) -> usize {
        match &self.0 {
            Repr::Inline { len, .. } => *len as usize,
            Repr::Heap(s) => s.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_kept_end_to_end_inline_or_not() {
        let a = "a".repeat(64);
        let r = "r".repeat(64);
        for (parts, inline) in [
            (vec![], true),
            (vec![a.as_str()], true),
            (vec![a.as_str(), r.as_str()], true),
            (vec![a.as_str(), r.as_str(), "x"], false),
            (vec!["é", "ü€"], true),
        ] {
            let t = Text::new(&parts);
            assert_eq!(t.as_str(), parts.concat());
            assert_eq!(t.len(), parts.concat().len());
            assert_eq!(matches!(t.0, Repr::Inline { .. }), inline, "{parts:?}");
        }
    }
}
