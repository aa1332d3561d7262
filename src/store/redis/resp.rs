//! RESP2, the protocol of Redis and Valkey: a command written as an array of bulk strings,
//! a reply read. Binary-safe (a token may hold any byte); nothing here is ever shown.
//! RESP3's types are read too (only the cache's invalidation connection says `HELLO 3`):
//! a push (`>`, the server's invalidations) is `Push`; a map, set or attribute's pairs
//! and members an `Array` (an attribute is skipped); null `Nil`; a boolean `Int` (0, 1);
//! a double, big number or verbatim string a `Bulk` of its text; a blob error an `Error`.

use std::io::{self, BufRead};

/// A reply. An error reply's text stays here: only its first word (the error code:
/// `ERR`, `NOSCRIPT`, `WRONGTYPE`, …) reaches a message, as the rest may quote a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Nil,
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
    /// Out of band (RESP3): `invalidate` and its keys.
    Push(Vec<Reply>),
}

impl Reply {
    /// A bulk or status reply as text; `None` for nil (or another kind).
    pub fn text(self) -> Option<String> {
        match self {
            Reply::Bulk(b) => String::from_utf8(b).ok(),
            Reply::Status(s) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            Reply::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The items of an array reply (none for nil).
    pub fn items(self) -> Vec<Reply> {
        match self {
            Reply::Array(items) => items,
            _ => Vec::new(),
        }
    }
}

/// Appends `args` as one command.
pub fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// How deeply arrays may nest in a reply (this store's scripts answer two levels).
const MAX_DEPTH: usize = 16;

/// Reads one reply.
pub fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    read_at(r, 0)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server's reply is not RESP: {what}"),
    )
}

fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(invalid("a line without its end"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn number(line: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("a length or integer that is not a number"))
}

/// A bulk string's data, `head` its length.
fn read_bulk(r: &mut impl BufRead, head: &[u8]) -> io::Result<Reply> {
    let len = number(head)?;
    if len < 0 {
        return Ok(Reply::Nil);
    }
    let len = usize::try_from(len).map_err(|_| invalid("a bulk string too long"))?;
    let mut data = vec![0; len + 2];
    r.read_exact(&mut data)?;
    if !data.ends_with(b"\r\n") {
        return Err(invalid("a bulk string without its end"));
    }
    data.truncate(len);
    Ok(Reply::Bulk(data))
}

fn read_at(r: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (&kind, rest) = line.split_first().ok_or_else(|| invalid("an empty line"))?;
    match kind {
        b'+' => Ok(Reply::Status(String::from_utf8_lossy(rest).into_owned())),
        b'-' => Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned())),
        b':' => Ok(Reply::Int(number(rest)?)),
        b'$' => read_bulk(r, rest),
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let len = number(rest)?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            if depth >= MAX_DEPTH {
                return Err(invalid("arrays nested too deeply"));
            }
            let len = usize::try_from(len).map_err(|_| invalid("an array too long"))?;
            // A map's and an attribute's entries are pairs.
            let len = if matches!(kind, b'%' | b'|') {
                len.checked_mul(2).ok_or_else(|| invalid("a map too long"))?
            } else {
                len
            };
            let mut items = Vec::with_capacity(len.min(1 << 16));
            for _ in 0..len {
                items.push(read_at(r, depth + 1)?);
            }
            match kind {
                b'>' => Ok(Reply::Push(items)),
                // An attribute annotates the reply that follows it.
                b'|' => read_at(r, depth + 1),
                _ => Ok(Reply::Array(items)),
            }
        }
        b'_' => Ok(Reply::Nil),
        b'#' => Ok(Reply::Int(i64::from(rest == b"t"))),
        b',' | b'(' => Ok(Reply::Bulk(rest.to_vec())),
        b'=' | b'!' => {
            let Reply::Bulk(mut data) = read_bulk(r, rest)? else {
                return Ok(Reply::Nil);
            };
            if kind == b'!' {
                return Ok(Reply::Error(String::from_utf8_lossy(&data).into_owned()));
            }
            // `txt:` or `mkd:`, then the text.
            data.drain(..data.len().min(4));
            Ok(Reply::Bulk(data))
        }
        _ => Err(invalid("an unknown reply type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_every_kind() {
        let mut out = Vec::new();
        write_command(&mut out, &[b"GET", b"a\0b"]);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$3\r\na\0b\r\n");
        let input = b"*6\r\n+OK\r\n-ERR no\r\n:-12\r\n$-1\r\n$4\r\na\r\nb\r\n*1\r\n*0\r\n";
        let reply = read_reply(&mut &input[..]).unwrap();
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Status("OK".into()),
                Reply::Error("ERR no".into()),
                Reply::Int(-12),
                Reply::Nil,
                Reply::Bulk(b"a\r\nb".to_vec()),
                Reply::Array(vec![Reply::Array(vec![])]),
            ])
        );
    }

    #[test]
    fn reads_resp3() {
        let input = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$4\r\nk:at\r\n\
            >2\r\n$10\r\ninvalidate\r\n_\r\n\
            %1\r\n+proto\r\n:3\r\n\
            |1\r\n+ttl\r\n:3\r\n#t\r\n\
            ~1\r\n,1.5\r\n=8\r\ntxt:abcd\r\n!5\r\nERR x\r\n(12\r\n";
        let mut r = &input[..];
        let mut next = || read_reply(&mut r).unwrap();
        assert_eq!(
            next(),
            Reply::Push(vec![
                Reply::Bulk(b"invalidate".to_vec()),
                Reply::Array(vec![Reply::Bulk(b"k:at".to_vec())]),
            ])
        );
        assert_eq!(
            next(),
            Reply::Push(vec![Reply::Bulk(b"invalidate".to_vec()), Reply::Nil])
        );
        assert_eq!(
            next(),
            Reply::Array(vec![Reply::Status("proto".into()), Reply::Int(3)])
        );
        assert_eq!(next(), Reply::Int(1));
        assert_eq!(next(), Reply::Array(vec![Reply::Bulk(b"1.5".to_vec())]));
        assert_eq!(next(), Reply::Bulk(b"abcd".to_vec()));
        assert_eq!(next(), Reply::Error("ERR x".into()));
        assert_eq!(next(), Reply::Bulk(b"12".to_vec()));
    }

    #[test]
    fn refuses_what_is_not_resp() {
        for bad in [&b"?x\r\n"[..], b"$3\r\nab\r\n", b":x\r\n", b"+OK", b""] {
            assert!(read_reply(&mut &bad[..]).is_err(), "{bad:?}");
        }
    }
}
