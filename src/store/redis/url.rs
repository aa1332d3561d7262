//! Redis URLs, as hosted providers write them: `redis://[user[:password]@]host[:port][/db]`,
//! `rediss://` for TLS (`valkey://` and `valkeys://` alike). Sentinel and Cluster are
//! refused by name. No message here ever holds a value of the URL: only a part's name.

use crate::error::{Result, StoreError};

/// A parsed URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// `rediss://`: TLS, the server's certificate checked against the system's CAs (or
    /// `ssl_ca_certs`) and the host name.
    pub tls: bool,
    /// `ssl_ca_certs`: a PEM file of the CAs to trust.
    pub ca_file: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: u32,
    /// `host:port/db`, for logs and messages.
    pub shown: String,
}

impl std::fmt::Debug for Target {
    /// Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Parses `url`, which the caller named `setting` (for messages).
pub fn parse(url: &str, setting: &str) -> Result<Target> {
    let bad = |what: &str| StoreError::Config(format!("{setting}: {what}"));
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not a URL; give redis://[user:password@]host[:port][/db] or rediss://… for TLS"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "redis" | "valkey" => false,
        "rediss" | "valkeys" => true,
        s if s.contains("sentinel") => {
            return Err(bad(
                "Redis Sentinel is not supported; give the URL of the primary (redis://host:port)",
            ))
        }
        s if s.contains("cluster") => {
            return Err(bad(
                "Redis Cluster is not supported; give the URL of a single server or primary",
            ))
        }
        s if s.contains("unix") => {
            return Err(bad(
                "Unix sockets are not supported yet; give redis://host:port",
            ))
        }
        _ => return Err(bad("the scheme must be redis:// or rediss:// (valkey://, valkeys://)")),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            let user = decode(user).ok_or_else(|| bad("the user name is not valid percent-encoding"))?;
            let pass = pass
                .map(|p| decode(p).ok_or_else(|| bad("the password is not valid percent-encoding")))
                .transpose()?;
            // `redis://:password@host` (no user): the default user's password.
            match (user.is_empty(), pass) {
                (true, p) => (None, p.filter(|p| !p.is_empty())),
                (false, p) => (Some(user), p),
            }
        }
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 host without its closing ]"))?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("the URL has no host"));
    }
    let port = match port {
        None | Some("") => 6379,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
    };
    let mut db = match path.trim_end_matches('/') {
        "" => 0,
        p => p
            .parse::<u32>()
            .map_err(|_| bad("the path must be the database number (/0, /1, …)"))?,
    };
    let mut ca_file = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value).ok_or_else(|| bad("a parameter is not valid percent-encoding"))?;
        match name {
            "db" => {
                db = value
                    .parse()
                    .map_err(|_| bad("db must be the database number"))?
            }
            "ssl_ca_certs" => ca_file = Some(value),
            "ssl_cert_reqs" if value.eq_ignore_ascii_case("required") => {}
            "ssl_cert_reqs" => {
                return Err(bad(
                    "ssl_cert_reqs other than required is not supported: the server's certificate \
                     is always checked (give its CA with ssl_ca_certs=/path/ca.pem)",
                ))
            }
            "protocol" | "timeout" | "socket_timeout" | "connect_timeout" | "client_name" => {}
            _ => {
                return Err(StoreError::Config(format!(
                    "{setting}: the parameter {} is not supported",
                    name.chars().take(40).collect::<String>()
                )))
            }
        }
    }
    if ca_file.is_some() && !tls {
        return Err(bad("ssl_ca_certs needs TLS: use rediss://"));
    }
    let shown_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let shown = format!(
        "{}://{shown_host}:{port}/{db}",
        if tls { "rediss" } else { "redis" }
    );
    Ok(Target {
        host,
        port,
        tls,
        ca_file,
        user,
        password,
        db,
        shown,
    })
}

/// Percent-decoding; `None` for a malformed escape or text that is not UTF-8.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_providers_give() {
        let t = parse("redis://localhost", "U").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db, t.tls), ("localhost", 6379, 0, false));
        assert_eq!((t.user, t.password), (None, None));
        let t = parse("rediss://default:p%40ss@cache.example:6380/2", "U").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db, t.tls), ("cache.example", 6380, 2, true));
        assert_eq!(t.user.as_deref(), Some("default"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.shown, "rediss://cache.example:6380/2");
        let t = parse("redis://:secret@[::1]:7000?db=3", "U").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("::1", 7000, 3));
        assert_eq!((t.user, t.password.as_deref()), (None, Some("secret")));
        assert_eq!(t.shown, "redis://[::1]:7000/3");
        assert!(parse("valkey://h", "U").is_ok());
    }

    #[test]
    fn refuses_by_name_without_showing_the_url() {
        for (url, says) in [
            ("redis+sentinel://pw@h:26379/mymaster", "Sentinel"),
            ("redis-cluster://pw@h", "Cluster"),
            ("postgres://pw@h", "scheme"),
            ("redis://pw@h:notaport", "port"),
            ("redis://pw@h/x", "database number"),
            ("redis://pw@h?ssl_cert_reqs=none", "ssl_cert_reqs"),
            ("redis://pw@h?sslmode=require", "sslmode"),
            ("redis://u:pw@", "no host"),
        ] {
            let e = parse(url, "TOKEN_REDIS_URL").unwrap_err();
            let text = e.to_string();
            assert_eq!(e.code(), "ERR_TOKEN_STORAGE_CONFIG");
            assert!(text.contains(says) && text.contains("TOKEN_REDIS_URL"), "{text}");
            assert!(!text.contains("pw"), "{text}");
        }
    }
}
