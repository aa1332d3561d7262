//! The database file before SQLite opens it: private folders and file, symlinks followed
//! to the file that is really created, and the identity of the files SQLite adds.

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// Creates missing parent folders (0700) and the file itself (0600) before SQLite does,
/// so a file of API keys is never readable by others, not even for a moment.
pub(super) fn prepare_file(path: &Path, shown: &str) -> Result<()> {
    let open_err = |reason: String| StoreError::Open {
        path: shown.to_owned(),
        reason,
    };
    if path.is_dir() {
        return Err(open_err("the path is a directory".into()));
    }
    // Through a symlink, the file to create is its target (SQLite opens the target, and
    // puts the -wal and -shm files beside it with the target's mode).
    let path = &final_target(path);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut folders = DirBuilder::new();
        folders.recursive(true);
        #[cfg(unix)]
        folders.mode(0o700);
        folders
            .create(parent)
            .map_err(|e| open_err(format!("cannot create its folder ({})", io_reason(&e))))?;
    }
    let mut file = OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    file.mode(0o600);
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(open_err(format!(
            "cannot create the file ({})",
            io_reason(&e)
        ))),
    }
}

/// The path with its last component's symlinks followed, whether or not the final target
/// exists yet (`canonicalize` fails on a dangling link). Parent folders may stay symlinks.
pub(super) fn final_target(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    // As the kernel's own limit on nested links: a loop ends as a path that fails to open.
    for _ in 0..40 {
        let is_link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        let Some(target) = is_link.then(|| std::fs::read_link(&p).ok()).flatten() else {
            break;
        };
        p = match p.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        };
    }
    p
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::NotFound => "a parent folder does not exist".into(),
        _ => e.to_string(),
    }
}

/// A file's (device, inode), if it exists.
pub(super) fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    // Elsewhere a file in use cannot be deleted or replaced anyway; nothing is noted.
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}
