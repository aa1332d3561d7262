//! Connection strings, as hosted providers write them: the URL form
//! (`postgres://user:password@host:port/db?sslmode=require`) and libpq's key-value form
//! (`host=… user=… password=… dbname=…`). The parameters tokio-postgres does not know
//! (`sslmode=verify-ca`/`verify-full`, `sslrootcert`, and the settings that ORMs and
//! poolers add) are taken out here; the rest is tokio-postgres's to parse.
//!
//! No message here ever holds a value of the string: only a parameter's name.

use std::time::Duration;

use tokio_postgres::config::Host;

use crate::error::{Result, StoreError};

/// How the connection is encrypted and what is checked of the server's certificate
/// (libpq's `sslmode`, `prefer` by default, as in libpq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, its certificate not checked.
    Prefer,
    /// TLS, its certificate not checked (hosted databases with a CA of their own).
    Require,
    /// TLS, the certificate signed by a trusted CA, the host name not checked.
    VerifyCa,
    /// TLS, the certificate signed by a trusted CA and issued for the host.
    VerifyFull,
}

/// A parsed connection string.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    /// `sslrootcert`: a PEM file of the CAs to trust, or `None` for the system's roots.
    pub root_cert: Option<String>,
    /// `host:port/database`, for logs and messages.
    pub shown: String,
    /// `pgbouncer=true` or `statement_cache_size=0` (Prisma's words for a transaction-mode
    /// pooler that keeps no prepared statements): every statement is sent unnamed.
    pub unnamed: bool,
}

/// Parameters that ORMs and poolers put in URLs for themselves (Prisma, Supabase's
/// pooler): accepted and ignored.
const IGNORED: &[&str] = &[
    "pgbouncer",
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
    "statement_cache_size",
    "schema",
    "uselibpqcompat",
];

/// libpq parameters this store does not support: refused by name rather than ignored,
/// since each would change what the connection is allowed to do.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("sslcert", "client certificates are not supported"),
    ("sslkey", "client certificates are not supported"),
    ("sslpassword", "client certificates are not supported"),
    ("sslcrl", "certificate revocation lists are not supported"),
    (
        "sslcrldir",
        "certificate revocation lists are not supported",
    ),
    ("service", "service files are not supported"),
    ("passfile", "password files are not supported"),
    ("requiressl", "use sslmode=require"),
    ("gssencmode", "GSSAPI encryption is not supported"),
    ("krbsrvname", "Kerberos is not supported"),
];

/// Parses `url`, which the caller named `setting` (for messages).
pub fn parse(url: &str, setting: &str, connect_timeout: Duration) -> Result<Target> {
    let bad = |what: String| StoreError::Config(format!("{setting}: {what}"));
    let url = url.trim();
    // Messages never quote the string (it holds a password): a malformed one is named by
    // its form and the position of the bad pair only.
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    let is_url = scheme.is_some();
    let (base, pairs) = match scheme.as_deref() {
        Some("postgres" | "postgresql") => {
            let rest = url.split_once("://").map_or("", |(_, rest)| rest);
            check_url_form(rest).map_err(bad)?;
            split_url(&format!("postgresql://{rest}"))
        }
        Some(_) => return Err(bad("not a postgres:// or postgresql:// URL".into())),
        None => (String::new(), split_key_values(url).map_err(bad)?),
    };
    let mut ssl_mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut unnamed = false;
    for (key, value) in pairs {
        match key.as_str() {
            "pgbouncer" => unnamed |= value.eq_ignore_ascii_case("true"),
            "statement_cache_size" => unnamed |= value.trim() == "0",
            "sslmode" => {
                ssl_mode =
                    match value.as_str() {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        _ => return Err(bad(
                            "sslmode must be disable, prefer, require, verify-ca or verify-full"
                                .into(),
                        )),
                    }
            }
            "sslrootcert" => root_cert = Some(value).filter(|v| v != "system"),
            k if IGNORED.contains(&k) => {}
            k => {
                if let Some((_, why)) = UNSUPPORTED.iter().find(|(name, _)| *name == k) {
                    return Err(bad(format!("{k}: {why}")));
                }
                kept.push((key, value));
            }
        }
    }
    let base = libpq_overrides(&base, &mut kept);
    let rebuilt = if is_url {
        let query: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        if query.is_empty() {
            base
        } else {
            format!("{base}?{}", query.join("&"))
        }
    } else {
        kept.iter()
            .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut config: tokio_postgres::Config =
        rebuilt.parse().map_err(|e: tokio_postgres::Error| {
            // tokio-postgres's parse errors name an option, never its value.
            let why =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            bad(format!("not a PostgreSQL connection string ({why})"))
        })?;
    // A host name never holds an @: one that does is a user:password@ that lost its way.
    if config
        .get_hosts()
        .iter()
        .any(|h| matches!(h, Host::Tcp(name) if name.contains('@')))
    {
        return Err(bad("a host name holds an @ (is a password in it?)".into()));
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    if config.get_user().is_none() {
        return Err(bad("the connection string names no user".into()));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("native-token-storage");
    }
    let shown = shown(&config);
    Ok(Target {
        config,
        ssl_mode,
        root_cert,
        shown,
        unnamed,
    })
}

/// How to write a password that holds what a URL reserves (every URL message ends so).
const PERCENT_ENCODE: &str = "percent-encode the user name and password \
    (@ as %40, / as %2F, ? as %3F, # as %23, % as %25, a space as %20), or use the key-value \
    form (host=… user=… password='…')";

/// Refuses a URL (what follows `://`) that a parser could split in more than one way: a
/// password holding an unencoded `@`, `/`, `?` or `#` would otherwise become part of the
/// host, the database or a parameter, and be shown. Messages say what is wrong, never where.
fn check_url_form(rest: &str) -> std::result::Result<(), String> {
    let reserved = |what: &str| Err(format!("{what}; {PERCENT_ENCODE}"));
    if rest.contains('#') {
        return reserved("the URL holds a # (a URL ends at one)");
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return reserved("the URL holds a space or a control character");
    }
    let bytes = rest.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
        if *b == b'%' && !(hex(i + 1) && hex(i + 2)) {
            return reserved("the URL holds a % that does not start a %XX escape");
        }
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let ats = rest.matches('@').count();
    if ats > 1 || (ats == 1 && !authority.contains('@')) {
        return reserved(
            "the URL holds an @ that is not the one between user:password and the host",
        );
    }
    let (userinfo, hosts) = authority.rsplit_once('@').unwrap_or(("", authority));
    if userinfo.chars().any(|c| {
        matches!(
            c,
            '[' | ']' | '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}'
        )
    }) {
        return reserved("the user name or password holds a character a URL reserves");
    }
    for host in hosts.split(',') {
        if let (_, Some(port)) = split_port(host) {
            let valid = !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
            if !valid {
                return Err("a port is not a number from 1 to 65535".into());
            }
        }
    }
    Ok(())
}

/// `host:port/database` (hosts joined by commas): what logs and messages show.
fn shown(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default();
    format!("{}/{db}", hosts.join(","))
}

/// libpq's reading (node-postgres's too) where tokio-postgres's differs: the last of a
/// repeated `host`, `hostaddr` or `port` wins, and a `host` or `port` parameter replaces
/// what the URL's authority names, where tokio-postgres adds it to a list. So
/// `postgres://u:p@localhost/db?host=/cloudsql/project:region:instance` (Cloud SQL's socket
/// form) reaches the socket only, not `localhost` first. The authority's ports stay when
/// only its hosts are replaced. Returns `base` rewritten; `kept` loses the repeats.
fn libpq_overrides(base: &str, kept: &mut Vec<(String, String)>) -> String {
    for key in ["host", "hostaddr", "port"] {
        while kept.iter().filter(|(k, _)| k == key).count() > 1 {
            if let Some(first) = kept.iter().position(|(k, _)| k == key) {
                kept.remove(first);
            }
        }
    }
    let Some(rest) = base.strip_prefix("postgresql://") else {
        return base.to_owned();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let (user, hosts) = authority
        .rsplit_once('@')
        .map_or(("", authority), |(u, h)| (u, h));
    let port_at = kept.iter().position(|(k, _)| k == "port");
    let hosts = if kept.iter().any(|(k, _)| k == "host") {
        let ports: Vec<&str> = hosts.split(',').filter_map(|h| split_port(h).1).collect();
        if port_at.is_none() && !ports.is_empty() {
            kept.push(("port".into(), ports.join(",")));
        }
        String::new()
    } else if let Some(i) = port_at.filter(|_| !hosts.is_empty()) {
        // Written into the authority: tokio-postgres gives a host without one 5432, and
        // would add the parameter's after it.
        let names: Vec<&str> = hosts.split(',').map(|h| split_port(h).0).collect();
        let ports: Vec<String> = kept[i].1.split(',').map(str::to_owned).collect();
        if ports.len() != 1 && ports.len() != names.len() {
            return base.to_owned();
        }
        kept.remove(i);
        let with: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(n, h)| format!("{h}:{}", ports.get(n).unwrap_or(&ports[0])))
            .collect();
        with.join(",")
    } else {
        hosts.to_owned()
    };
    let at = if authority.contains('@') { "@" } else { "" };
    let path = path.map(|p| format!("/{p}")).unwrap_or_default();
    format!("postgresql://{user}{at}{hosts}{path}")
}

/// `[::1]:5432`, `name:5432`, `name`: the host and the port, which follows the last `:`
/// outside brackets.
fn split_port(host: &str) -> (&str, Option<&str>) {
    let tail = host.rfind(']').map_or(0, |i| i + 1);
    match host[tail..].rfind(':') {
        Some(j) => (&host[..tail + j], Some(&host[tail + j + 1..])),
        None => (host, None),
    }
}

/// The URL before its `?`, and its query parameters, decoded.
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    (base.to_owned(), pairs)
}

/// libpq's key-value form: `key = value` pairs separated by spaces, values optionally in
/// single quotes, `\` escaping the next character.
fn split_key_values(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let n = out.len() + 1;
        // A key is a parameter name: anything else is part of a malformed value (a password
        // with a space, say), which a message must not repeat.
        let named = !key.is_empty()
            && key.len() <= 40
            && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if !named || chars.next() != Some('=') {
            return Err(format!(
                "key-value pair {n} is malformed (quote values that hold spaces: password='…')"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(format!("the quoted value of pair {n} is unterminated")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn ok(url: &str) -> Target {
        match parse(url, "TOKEN_DATABASE_URL", T) {
            Ok(t) => t,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    fn err(url: &str) -> String {
        match parse(url, "TOKEN_DATABASE_URL", T) {
            Ok(_) => panic!("{url} parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn provider_urls_parse_and_never_show_the_password() {
        let cases = [
            // Railway
            (
                "postgresql://postgres:s3cr%40t@monorail.proxy.rlwy.net:45678/railway",
                SslMode::Prefer,
                "monorail.proxy.rlwy.net:45678/railway",
            ),
            // Heroku
            (
                "postgres://u1:s3cr%40t@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d9?sslmode=require",
                SslMode::Require,
                "ec2-1-2-3-4.compute-1.amazonaws.com:5432/d9",
            ),
            // Supabase's transaction pooler, as Prisma wants it
            (
                "postgresql://postgres.abcd:s3cr%40t@aws-0-eu-west-1.pooler.supabase.com:6543/postgres?pgbouncer=true&connection_limit=1",
                SslMode::Prefer,
                "aws-0-eu-west-1.pooler.supabase.com:6543/postgres",
            ),
            // Neon
            (
                "postgresql://alex:s3cr%40t@ep-cool-darkness-123456.us-east-2.aws.neon.tech/dbname?sslmode=verify-full&channel_binding=require",
                SslMode::VerifyFull,
                "ep-cool-darkness-123456.us-east-2.aws.neon.tech:5432/dbname",
            ),
            // key-value form, quoted password with a space and a quote
            (
                "host=db.internal port=6432 user=app password='s3cr@t it\\'s' dbname=tokens sslmode=verify-ca sslrootcert=/etc/ca.pem",
                SslMode::VerifyCa,
                "db.internal:6432/tokens",
            ),
            // a Unix socket
            (
                "postgresql://postgres@/tokens?host=/var/run/postgresql&sslmode=disable",
                SslMode::Disable,
                "/var/run/postgresql:5432/tokens",
            ),
            // Cloud SQL's socket form: the parameter replaces `localhost` (as in libpq)
            (
                "postgres://u:s3cr%40t@localhost/tokens?host=/cloudsql/p:eu-west1:db",
                SslMode::Prefer,
                "/cloudsql/p:eu-west1:db:5432/tokens",
            ),
            // the authority's port stays when only its host is replaced
            (
                "postgresql://postgres@localhost:6543/tokens?host=/var/run/postgresql",
                SslMode::Prefer,
                "/var/run/postgresql:6543/tokens",
            ),
            // a port parameter replaces the authority's
            (
                "postgresql://u@[::1]:5432,db.internal/tokens?port=6432",
                SslMode::Prefer,
                "::1:6432,db.internal:6432/tokens",
            ),
            // the last of a repeated host wins (libpq)
            ("host=a host=b user=u dbname=tokens", SslMode::Prefer, "b:5432/tokens"),
        ];
        for (url, mode, shown) in cases {
            let t = ok(url);
            assert_eq!(t.ssl_mode, mode, "{url}");
            assert_eq!(t.shown, shown, "{url}");
            assert!(!t.shown.contains("s3cr"));
            if url.contains("s3cr") {
                assert_eq!(
                    t.config.get_password().map(|p| p.starts_with(b"s3cr@t")),
                    Some(true),
                    "{url}"
                );
            }
        }
        assert_eq!(
            ok("host=h user=u sslrootcert=/etc/ca.pem")
                .root_cert
                .as_deref(),
            Some("/etc/ca.pem")
        );
        assert_eq!(ok("host=h user=u sslrootcert=system").root_cert, None);
        assert_eq!(ok("PostgreSQL://u:pw@h:6543/d").shown, "h:6543/d");
        assert_eq!(
            ok("postgres://u:p@h/d").config.get_connect_timeout(),
            Some(&T)
        );
        assert_eq!(
            ok("postgres://u:p@h/d?connect_timeout=2")
                .config
                .get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
    }

    #[test]
    fn a_transaction_pooler_named_in_the_url_gets_unnamed_statements() {
        for url in [
            "postgres://u:p@h:6543/d?pgbouncer=true",
            "postgres://u:p@h:6543/d?pgbouncer=TRUE&connection_limit=1",
            "postgres://u:p@h/d?statement_cache_size=0",
            "host=h user=u pgbouncer=true",
        ] {
            assert!(ok(url).unnamed, "{url}");
        }
        for url in [
            "postgres://u:p@h/d",
            "postgres://u:p@h/d?pgbouncer=false",
            "postgres://u:p@h/d?statement_cache_size=100",
        ] {
            assert!(!ok(url).unnamed, "{url}");
        }
    }

    #[test]
    fn bad_strings_are_named_without_their_values() {
        for (url, says) in [
            ("postgres://u:hunter2@h/d?sslmode=maybe", "sslmode must be"),
            (
                "postgres://u:hunter2@h/d?sslcert=/c.pem",
                "client certificates",
            ),
            ("postgres://u:hunter2@h/d?bogus=1", "unknown option `bogus`"),
            (
                "postgres://u:hunter2@h:notaport/d",
                "a port is not a number",
            ),
            ("host=h password=hunter2", "names no user"),
            ("host=h user=u password='hunter2", "unterminated"),
            ("POSTGRES://u:hunter2@h/d?sslmode=maybe", "sslmode must be"),
            (
                "pgsql://u:hunter2@h/d",
                "not a postgres:// or postgresql:// URL",
            ),
            ("u:hunter2@h/d", "key-value pair 1 is malformed"),
            // A password with a reserved character left as it is.
            (
                "postgres://u:pa@hunter2@h:5432/d",
                "an @ that is not the one",
            ),
            (
                "postgres://u:pa/hunter2@h:5432/d",
                "an @ that is not the one",
            ),
            (
                "postgres://u:pa?hunter2@h:5432/d",
                "an @ that is not the one",
            ),
            ("postgres://u:pa?hunter2=1@h/d", "an @ that is not the one"),
            ("postgres://u:pa#hunter2@h:5432/d", "holds a #"),
            ("postgres://u:pa%zhunter2@h/d", "%XX escape"),
            ("postgres://u:pa hunter2@h/d", "a space"),
            ("postgres://u:pa[hunter2@h/d", "a character a URL reserves"),
            ("postgres://u:hunter2@h:99999/d", "a port is not a number"),
            ("postgres://u:hunter2@h:/d", "a port is not a number"),
            ("host=u:hunter2@h user=u", "a host name holds an @"),
            (
                "host=h user=u password=hun ter2",
                "key-value pair 4 is malformed",
            ),
            (
                "host=h user=u password=hun ter2=x",
                "key-value pair 4 is malformed",
            ),
        ] {
            let e = err(url);
            assert!(e.contains(says), "{url}: {e}");
            assert!(e.starts_with("TOKEN_DATABASE_URL: "), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
            if [
                "an @ that is not the one",
                "holds a #",
                "%XX escape",
                "a space",
                "a character a URL reserves",
            ]
            .contains(&says)
            {
                assert!(
                    e.contains("percent-encode the user name and password"),
                    "{e}"
                );
            }
        }
        // The forms that are not mistakes stay accepted.
        assert_eq!(ok("postgres://u:p:w@[::1]:6543/d").shown, "::1:6543/d");
        assert_eq!(ok("postgres://u:p%40w@h,k:6000/d").shown, "h:5432,k:6000/d");
    }
}
