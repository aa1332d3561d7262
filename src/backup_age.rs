//! A backup file encrypted, and decrypted, in the standard age format
//! (age-encryption.org/v1, the `age` crate), so that `age -d` opens it and a copy kept off
//! the server leaks nothing: to one or more X25519 recipients (`age1…`, from `age-keygen`)
//! or to a passphrase (age's scrypt recipient, its work factor picked for about a second).
//!
//! Files are streamed (a backup's size does not matter) and each output is created new,
//! `0600`, and removed if anything fails. Errors never hold a passphrase or a key: a wrong
//! passphrase or key, a damaged or altered file and a file that is not age's are
//! `CannotDecrypt`; a malformed recipient or identity is `Config`.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::str::FromStr;

use age::secrecy::SecretString;

use crate::error::{Result, StoreError};

/// What a backup is encrypted to.
pub enum EncryptTo {
    /// `age1…` public keys: any one of their identities opens the file.
    Recipients(Vec<String>),
    /// A passphrase (scrypt).
    Passphrase(String),
}

/// What opens an encrypted backup.
pub enum OpenWith {
    /// The text of an identity file (`AGE-SECRET-KEY-1…` lines, `#` comments).
    Identities(String),
    /// The passphrase it was encrypted to.
    Passphrase(String),
}

/// The first bytes of every (binary) age file.
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// Whether the file at `path` starts as an age file does.
pub fn is_age_file(path: &Path) -> Result<bool> {
    let mut head = [0u8; 22];
    let mut file = File::open(path).map_err(|e| io_err(path, "cannot read it", e))?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(io_err(path, "cannot read it", e)),
        }
    }
    Ok(read == MAGIC.len() && head[..] == *MAGIC)
}

/// Encrypts the file at `input` into a new file at `output` (refused if one is there);
/// returns the bytes written.
pub fn encrypt_file(input: &Path, output: &Path, to: &EncryptTo) -> Result<u64> {
    let encryptor = match to {
        EncryptTo::Passphrase(p) => {
            age::Encryptor::with_user_passphrase(SecretString::from(p.to_owned()))
        }
        EncryptTo::Recipients(list) => {
            let parsed = list
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    age::x25519::Recipient::from_str(r.trim()).map_err(|_| {
                        StoreError::Config(format!(
                            "recipient {} is not an age public key (age1…, from age-keygen)",
                            i + 1
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if parsed.is_empty() {
                return Err(StoreError::Config("no recipient given".into()));
            }
            age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| StoreError::Config(format!("cannot encrypt to them ({e})")))?
        }
    };
    let mut reader =
        BufReader::new(File::open(input).map_err(|e| io_err(input, "cannot read it", e))?);
    written(output, |out| {
        let mut writer = encryptor
            .wrap_output(BufWriter::new(out))
            .map_err(|e| io_err(output, "cannot write it", e))?;
        std::io::copy(&mut reader, &mut writer)
            .map_err(|e| io_err(output, "cannot write it", e))?;
        writer
            .finish()
            .and_then(|mut w| w.flush())
            .map_err(|e| io_err(output, "cannot write it", e))
    })
}

/// Decrypts the age file at `input` into a new file at `output` (refused if one is
/// there; created `0600`); returns the bytes written.
pub fn decrypt_file(input: &Path, output: &Path, with: &OpenWith) -> Result<u64> {
    let shown = input.display().to_string();
    let reader = BufReader::new(File::open(input).map_err(|e| io_err(input, "cannot read it", e))?);
    let decryptor = age::Decryptor::new_buffered(reader).map_err(|e| cannot_decrypt(&shown, &e))?;
    let identities: Vec<Box<dyn age::Identity>> = match with {
        OpenWith::Passphrase(p) => {
            if !decryptor.is_scrypt() {
                return Err(StoreError::CannotDecrypt(format!(
                    "{shown} is encrypted to age recipients, not to a passphrase: give the \
                     identity file (--identity)"
                )));
            }
            let mut identity = age::scrypt::Identity::new(SecretString::from(p.to_owned()));
            // What age's own command accepts: up to 2^22 (about 15 s at most here).
            identity.set_max_work_factor(22);
            vec![Box::new(identity)]
        }
        OpenWith::Identities(text) => {
            let file = age::IdentityFile::from_buffer(text.as_bytes()).map_err(|_| {
                StoreError::Config("the identity file cannot be read as age identities".into())
            })?;
            file.into_identities().map_err(|_| {
                StoreError::Config("the identity file holds a key age cannot use here".into())
            })?
        }
    };
    let mut plain = decryptor
        .decrypt(identities.iter().map(|i| &**i as &dyn age::Identity))
        .map_err(|e| cannot_decrypt(&shown, &e))?;
    written(output, |out| {
        let mut out = BufWriter::new(out);
        std::io::copy(&mut plain, &mut out).map_err(|e| {
            // The payload's authentication failed mid-stream (altered or cut mid-chunk), or
            // the file ends at a chunk's end before its last chunk (cut short there).
            if matches!(
                e.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) {
                StoreError::CannotDecrypt(format!("{shown} is damaged or was altered"))
            } else {
                io_err(output, "cannot write it", e)
            }
        })?;
        out.flush()
            .map_err(|e| io_err(output, "cannot write it", e))
    })
}

/// Creates `path` new and `0600`, has `fill` write it, and returns its size; removes it if
/// `fill` fails.
fn written(path: &Path, fill: impl FnOnce(File) -> Result<()>) -> Result<u64> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .map_err(|e| io_err(path, "cannot create it", e))?;
    let done = fill(file).and_then(|()| {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| io_err(path, "cannot read it", e))
    });
    if done.is_err() {
        let _ = std::fs::remove_file(path);
    }
    done
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        reason: format!("{what} ({e})"),
    }
}

fn cannot_decrypt(shown: &str, e: &age::DecryptError) -> StoreError {
    use age::DecryptError as D;
    let why = match e {
        D::NoMatchingKeys | D::DecryptionFailed | D::KeyDecryptionFailed => {
            "the passphrase or key does not open it"
        }
        D::ExcessiveWork { .. } => "its passphrase's work factor is above what is accepted",
        D::InvalidHeader | D::UnknownFormat => "it is not an age file, or its header is damaged",
        D::InvalidMac => "its header was altered",
        _ => "it cannot be decrypted",
    };
    StoreError::CannotDecrypt(format!("{shown}: {why}"))
}
